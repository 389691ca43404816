// The local launcher: see local_launcher.h.
#include "distributed/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace lf {

namespace {

constexpr const char* kLauncher = "launch";

std::atomic<int> g_forward_signal{0};

extern "C" void launcher_on_signal(int signal_number) {
  g_forward_signal.store(signal_number);
}

std::string launcher_describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "ended";
}

}  // namespace

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail(kLauncher, "cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    close(fd);
    fail(kLauncher, "cannot find a free port on 127.0.0.1");
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

int launch_local_workers(const LocalLaunch& launch) {
  if (launch.nproc < 1 || launch.nproc > 1024)
    fail(kLauncher, "--nproc {}: expected 1..1024", launch.nproc);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads =
      launch.threads_per_worker > 0 ? launch.threads_per_worker : std::max(1, cores / launch.nproc);
  const int port = free_local_port();
  spdlog::info("starting {} workers on 127.0.0.1:{}, {} threads each", launch.nproc, port, threads);

  struct sigaction action {
  }, old_int{}, old_term{};
  action.sa_handler = launcher_on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  std::vector<pid_t> pids;
  for (int rank = 0; rank < launch.nproc; ++rank) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      if (name == "RANK" || name == "WORLD_SIZE" || name == "LOCAL_RANK" ||
          name == "LOCAL_WORLD_SIZE" || name == "MASTER_ADDR" || name == "MASTER_PORT" ||
          name == "LF_THREADS" || name.rfind("TORCHELASTIC_", 0) == 0)
        continue;
      env.push_back(entry);
    }
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(launch.nproc));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(launch.nproc));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + std::to_string(port));
    env.push_back("LF_THREADS=" + std::to_string(threads));
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = launch.argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The workers share a process group of their own: a Ctrl-C at the terminal reaches the
    // launcher only, which passes it on once (a second signal would end them without a
    // checkpoint).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setpgroup(&attributes, pids.empty() ? 0 : pids.front());
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    const int error =
        posix_spawn(&pid, "/proc/self/exe", nullptr, &attributes, argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      for (pid_t p : pids) kill(p, SIGKILL);
      fail(kLauncher, "cannot start worker {}: {}", rank, std::strerror(error));
    }
    pids.push_back(pid);
  }

  int result = 0, running = launch.nproc;
  std::vector<bool> done(pids.size(), false);
  std::chrono::steady_clock::time_point kill_at{};
  bool stopping = false;
  while (running > 0) {
    if (const int s = g_forward_signal.exchange(0); s != 0) {
      spdlog::info("passing signal {} on to the workers", s);
      for (size_t r = 0; r < pids.size(); ++r)
        if (!done[r]) kill(pids[r], s);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      const auto it = std::find(pids.begin(), pids.end(), pid);
      if (it != pids.end()) {
        const size_t rank = static_cast<size_t>(it - pids.begin());
        done[rank] = true;
        --running;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && result == 0) {
          result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          spdlog::error("worker rank {} (pid {}) {}: stopping the other workers", rank, pid,
                        launcher_describe(status));
          for (size_t r = 0; r < pids.size(); ++r)
            if (!done[r]) kill(pids[r], SIGTERM);
          stopping = true;
          kill_at = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(launch.grace_seconds * 1000));
        }
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() > kill_at) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (!done[r]) kill(pids[r], SIGKILL);
      stopping = false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace lf
