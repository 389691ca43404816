// The web UI's training child process: see training_supervisor.h.
#include "server/training_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/config.h"

extern char** environ;

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

constexpr size_t kKeptLines = 40;

bool supervisor_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string supervisor_first_comment(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) != 0) break;
    line.erase(0, line.find_first_not_of("# "));
    if (!line.empty()) return line;
  }
  return "";
}

}  // namespace

TrainingSupervisor::TrainingSupervisor(std::string binary, std::string runs_root,
                                       std::string configs_dir)
    : binary_(std::move(binary)),
      runs_root_(std::move(runs_root)),
      configs_dir_(std::move(configs_dir)) {}

TrainingSupervisor::~TrainingSupervisor() {
  shutdown();
}

std::string TrainingSupervisor::config_path(const std::string& name) const {
  if (configs_dir_.empty()) fail("serve", "no configs are offered (start serve with --configs)");
  if (!supervisor_valid_name(name))
    fail("serve", "config '{}': expected a name from GET /api/configs", name);
  const std::string path = configs_dir_ + "/" + name + ".yaml";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    fail("serve", "no config '{}' (GET /api/configs lists them)", name);
  return path;
}

Json TrainingSupervisor::configs() const {
  Json list = Json::array();
  if (configs_dir_.empty()) return {{"configs", list}};
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(configs_dir_, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".yaml" && supervisor_valid_name(it->path().stem().string()))
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    Json entry = {{"name", file.stem().string()},
                  {"comment", supervisor_first_comment(file.string())}};
    try {
      const Config config = Config::from_yaml_file(file.string());
      entry["type"] = config.get<std::string>("model.type", "unknown");
      entry["steps"] = config.get<int64_t>("train.steps", 0);
      Json needs = Json::object();
      for (const char* key : {"stage1", "cond_stage"})
        if (config.has(key))
          needs[key] = fs::path(config.get<std::string>(key)).filename().string();
      entry["needs"] = needs;
    } catch (const std::exception& e) {
      entry["error"] = e.what();
    }
    list.push_back(entry);
  }
  return {{"configs", list}};
}

std::string TrainingSupervisor::start(const TrainStart& r) {
  const std::string config = config_path(r.config);
  if (!supervisor_valid_name(r.name))
    fail("serve",
         "run name '{}': expected 1-64 characters of [A-Za-z0-9._-], not starting with '.'",
         r.name);
  if (r.steps < 0 || r.steps > 10000000) fail("serve", "steps {}: expected 1..10000000", r.steps);
  const std::string run_dir = runs_root_ + "/" + r.name;
  std::error_code ec;
  if (fs::exists(run_dir, ec))
    fail("serve", "a folder '{}' exists already: choose another name", r.name);
  std::vector<std::string> args = {binary_, "train", "--config", config, "--out", run_dir};
  if (r.steps > 0) args.insert(args.end(), {"--set", fmt::format("train.steps={}", r.steps)});
  if (!r.stage1.empty()) args.insert(args.end(), {"--set", "stage1=" + r.stage1});
  if (!r.cond_stage.empty()) args.insert(args.end(), {"--set", "cond_stage=" + r.cond_stage});
  args.insert(args.end(), {"--eval-limit", "1000"});
  launch(args, run_dir, r.name);
  return r.name;
}

void TrainingSupervisor::resume(const std::string& run_dir, const std::string& run_id) {
  launch({binary_, "train", "--resume", run_dir, "--eval-limit", "1000"}, run_dir, run_id);
}

void TrainingSupervisor::launch(const std::vector<std::string>& args, const std::string& run_dir,
                                const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pid_ > 0)
    throw TrainingBusy(
        fmt::format("run '{}' is training: stop it first (one run at a time)", run_id_));
  if (watcher_.joinable()) watcher_.join();  // the last run's watcher has finished
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) fail("serve", "cannot create a pipe for the trainer");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group: a Ctrl-C meant for the server reaches the trainer only through
  // shutdown() (a checkpoint first). Default signal actions and an empty mask, whatever ours are.
  sigset_t defaults, empty;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, binary_.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(pipe_fds[1]);
  if (error != 0) {
    close(pipe_fds[0]);
    fail("serve", "cannot start the trainer: {}", std::strerror(error));
  }
  pid_ = pid;
  stopping_ = false;
  run_dir_ = run_dir;
  run_id_ = run_id;
  started_ = std::chrono::steady_clock::now();
  output_.clear();
  ++version_;
  watcher_ = std::thread([this, fd = pipe_fds[0], pid] { watch(fd, pid); });
}

void TrainingSupervisor::watch(int fd, pid_t pid) {
  std::string pending;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t at;
    while ((at = pending.find_first_of("\r\n")) != std::string::npos) {
      std::string line = pending.substr(0, at);
      pending.erase(0, at + 1);
      if (line.empty()) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      // The page is told the run's name, not where its folder lives.
      for (size_t at = 0; (at = line.find(run_dir_, at)) != std::string::npos; at += run_id_.size())
        line.replace(at, run_dir_.size(), run_id_);
      output_.push_back(std::move(line));
      while (output_.size() > kKeptLines) output_.pop_front();
      ++version_;
    }
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mutex_);
  std::string state, message = output_.empty() ? "" : output_.back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    state = message.rfind("stopped at step", 0) == 0 ? "stopped" : "finished";
  else
    state = WIFSIGNALED(status) ? "killed" : "failed";
  last_exit_ = {{"run", run_id_},
                {"state", state},
                {"code", WIFEXITED(status) ? WEXITSTATUS(status) : -1},
                {"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0},
                {"message", message}};
  pid_ = -1;
  stopping_ = false;
  ++version_;
}

bool TrainingSupervisor::stop(const std::string& run_dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code ec;
  if (pid_ <= 0 || fs::weakly_canonical(run_dir, ec) != fs::weakly_canonical(run_dir_, ec))
    return false;
  kill(pid_, SIGTERM);
  stopping_ = true;
  ++version_;
  return true;
}

Json TrainingSupervisor::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json out = {{"state", pid_ > 0 ? (stopping_ ? "stopping" : "running") : "idle"},
              {"output", Json(std::vector<std::string>(output_.begin(), output_.end()))},
              {"configs", !configs_dir_.empty()}};
  if (pid_ > 0) {
    out["run"] = run_id_;
    out["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  if (!last_exit_.is_null()) out["last_exit"] = last_exit_;
  return out;
}

uint64_t TrainingSupervisor::version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_;
}

void TrainingSupervisor::shutdown(std::chrono::milliseconds grace) {
  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pid = pid_;
    if (pid > 0) {
      kill(pid, SIGTERM);
      stopping_ = true;
    }
  }
  if (pid > 0) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (pid_ <= 0) break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);  // resume still works: from the last checkpoint
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace lf::serve
