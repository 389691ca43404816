// `latentforge serve`: the HTTP server of the local web UI. Binds one address, checks every
// request (request_guard.h), serves the embedded pages and the JSON API, and runs model work on
// one job queue.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lf::serve {

struct ServerOptions {
  std::vector<std::string> model_roots;  // --models
  std::string host = "127.0.0.1";        // --host
  int port = 8765;                       // --port (0: any free port)
  std::vector<std::string> allow_hosts;  // --allow-host: more names accepted in Host
  size_t max_body_bytes = 32u << 20;     // --max-upload
  double max_megapixels = 16;            // --max-megapixels
  int64_t max_side = 1024;               // uploads for models of no fixed size are shrunk to this
  size_t http_threads = 32;              // each open event stream holds one
  size_t max_streams = 24;  // event streams open at once (the rest of the threads answer requests)
  std::string configs_dir;  // --configs: configs the train page may start ("" = none)
  std::string binary;       // this program, for training runs started from the page
  torch::Device device{torch::kCPU};
  int threads = 0;  // LibTorch CPU threads for the jobs (0: the default)
};

class WebServer {
 public:
  explicit WebServer(ServerOptions options);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Binds the address; returns the port (the chosen one for port 0). Throws lf::Error on failure.
  int bind();
  // Serves until stop(). Then waits up to grace for the open connections (a client that stalls
  // mid-request holds one until its read timeout); false: some were still open, and the caller
  // must leave the process without destroying this object (their threads still use it).
  bool run(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  // Safe from any thread (not from a signal handler): cancels the jobs and ends run().
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lf::serve
