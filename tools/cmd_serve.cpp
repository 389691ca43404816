// `latentforge serve`: the local web UI (tools/server/). Prints "listening on http://HOST:PORT" on
// stdout once it accepts connections; SIGINT / SIGTERM stop it cleanly (a second one at once).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "model_source.h"
#include "server/web_server.h"

namespace lf::cli {

namespace {

int g_serve_stop_pipe[2] = {-1, -1};
std::atomic<int> g_serve_signals{0};

extern "C" void serve_on_signal(int) {
  if (g_serve_signals.fetch_add(1) > 0) _exit(130);  // a second signal: leave at once
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(g_serve_stop_pipe[1], &byte, 1);
}

bool serve_is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string serve_url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

struct ServeCommandOptions {
  std::vector<std::string> models;
  std::string host = "127.0.0.1";
  int port = 8765;
  std::vector<std::string> allow_hosts;
  std::string max_upload = "32M";
  double max_megapixels = 16;
  int64_t max_side = 1024;
  int http_threads = 32;
  int max_streams = 0;  // 0: http_threads - 8
  std::string configs = "configs";
};

void run_serve(const ServeCommandOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  serve::ServerOptions options;
  for (const auto& root : o.models) {
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec))
      fail("serve", "--models {}: no such folder (expected a folder of run or model folders)",
           root);
    options.model_roots.push_back(root);
  }
  options.host = o.host;
  options.port = o.port;
  options.allow_hosts = o.allow_hosts;
  options.max_body_bytes = static_cast<size_t>(parse_bytes(o.max_upload, "--max-upload"));
  options.max_megapixels = o.max_megapixels;
  options.max_side = o.max_side;
  options.http_threads = static_cast<size_t>(o.http_threads);
  options.max_streams =
      static_cast<size_t>(o.max_streams > 0 ? o.max_streams : std::max(1, o.http_threads - 8));
  if (options.max_streams + 2 > options.http_threads)
    fail("serve", "--max-streams {}: expected at most --http-threads - 2 ({})", options.max_streams,
         o.http_threads - 2);
  {
    std::error_code ec;
    if (std::filesystem::is_directory(o.configs, ec))
      options.configs_dir = o.configs;
    else if (o.configs != "configs")  // the default is optional
      fail("serve", "--configs {}: no such folder (expected a folder of .yaml configs)", o.configs);
    options.binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec)
      fail("serve", "cannot find this program's path (/proc/self/exe) to start training runs");
  }
  options.device = parse_device(globals.device);
  options.threads = torch::get_num_threads();  // as --threads set it (OpenMP's count is per thread)

  serve::WebServer server(options);
  const int port = server.bind();
  if (!serve_is_loopback(o.host))
    spdlog::warn(
        "serving on {}, not loopback: anyone who can reach this address can run the "
        "models and read their runs (there is no login)",
        o.host);

  if (pipe2(g_serve_stop_pipe, O_CLOEXEC) != 0) fail("serve", "cannot create the stop pipe");
  signal(SIGPIPE, SIG_IGN);  // httplib writes to sockets without MSG_NOSIGNAL
  struct sigaction action = {};
  action.sa_handler = serve_on_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int = {}, old_term = {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  // The watcher turns a signal into server.stop(), again until run() has returned (a stop that
  // lands before the accept loop starts would be lost otherwise).
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    pollfd fd = {g_serve_stop_pipe[0], POLLIN, 0};
    while (poll(&fd, 1, -1) <= 0 && !finished) {
    }
    while (!finished) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  std::printf("listening on http://%s:%d\n", serve_url_host(o.host).c_str(), port);
  std::fflush(stdout);
  const bool closed = server.run();
  if (!closed) {
    // A connection still open (a client stalled mid-request): its thread uses the server, so
    // leave without destroying it.
    spdlog::warn("serve: stopped with connections still open");
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    _exit(0);
  }
  finished = true;
  const char byte = 0;
  [[maybe_unused]] const ssize_t n = write(g_serve_stop_pipe[1], &byte, 1);
  watcher.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  close(g_serve_stop_pipe[0]);
  close(g_serve_stop_pipe[1]);
  spdlog::info("serve: stopped");
}

}  // namespace

void register_serve(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<ServeCommandOptions>();
  auto* cmd = app.add_subcommand(
      "serve",
      "local web UI: models, reconstruct, codebook, latent space, sampling, training runs");
  cmd->add_option("--models", o->models,
                  "folder of run / model folders to serve (repeatable; one level deep)")
      ->required();
  cmd->add_option("--port", o->port, "TCP port (0: any free port, printed on stdout)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", o->host,
                  "address to listen on; anything but loopback is reachable by other machines")
      ->capture_default_str();
  cmd->add_option("--allow-host", o->allow_hosts,
                  "another name accepted in the Host header (e.g. this machine's name with "
                  "--host 0.0.0.0); repeatable");
  cmd->add_option("--max-upload", o->max_upload, "largest request body, e.g. 32M")
      ->capture_default_str();
  cmd->add_option("--max-megapixels", o->max_megapixels,
                  "largest uploaded image, checked from its header before decoding")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-side", o->max_side,
                  "uploads for models without a fixed input size are shrunk to this many pixels "
                  "on their longer side")
      ->capture_default_str()
      ->check(CLI::Range(16, 16384));
  cmd->add_option("--http-threads", o->http_threads,
                  "threads answering requests (each open event stream holds one)")
      ->capture_default_str()
      ->check(CLI::Range(4, 512));
  cmd->add_option("--max-streams", o->max_streams,
                  "event streams open at once (0: --http-threads - 8); more are refused with 503")
      ->capture_default_str()
      ->check(CLI::Range(0, 510));
  cmd->add_option("--configs", o->configs,
                  "folder of .yaml configs the train page may start runs from (into the first "
                  "--models folder)")
      ->capture_default_str();
  cmd->callback([o, &globals] { run_serve(*o, globals); });
}

}  // namespace lf::cli
