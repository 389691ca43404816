// The HTTP server of `latentforge serve`: see web_server.h. Routes:
//   GET  /, /reconstruct.html, /train.html, ...   the embedded pages (web/)
//   GET  /api/health                              {ok, version}
//   GET  /api/models                              the served models (served_models.h)
//   GET  /api/models/{id}                         one model, with its model and train config
//   GET  /api/jobs, /api/jobs/{id}                the queue; one job with its result
//   POST /api/jobs/{id}/cancel
//   GET  /api/jobs/{id}/events                    the job's progress and partial results (SSE)
//   ... the model work of the pages (model_routes.cpp), runs and training (run_routes.cpp)
#include "server/web_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "io/config.h"
#include "io/image.h"
#include "server/job_queue.h"
#include "server/model_capabilities.h"
#include "server/request_guard.h"
#include "server/served_models.h"
#include "server/server_context.h"
#include "server/static_assets.h"

namespace lf::serve {

void reply_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, {{"error", message}});
}

int64_t query_int(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo,
                  int64_t hi) {
  if (!req.has_param(name)) return fallback;
  const std::string text = req.get_param_value(name);
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  fail("serve", "query parameter {}='{}': expected an integer in [{}, {}]", name, text, lo, hi);
}

Json json_body(const httplib::Request& req) {
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::exception& e) {
    fail("serve", "{} {}: the body is not JSON ({})", req.method, req.path, e.what());
  }
  if (!body.is_object()) fail("serve", "{} {}: expected a JSON object", req.method, req.path);
  return body;
}

std::string sse_event(const std::string& name, const Json& data) {
  return "event: " + name + "\ndata: " + data.dump() + "\n\n";
}

ServerContext::ServerContext(ServerOptions o)
    : options(std::move(o)), models(options.model_roots) {}

JobSettings ServerContext::job_settings() const {
  JobSettings settings;
  settings.device = options.device;
  settings.max_side = options.max_side;
  settings.threads = options.threads;
  return settings;
}

UploadLimits ServerContext::upload_limits() const {
  return {options.max_megapixels, options.max_side};
}

std::optional<ServedModel> ServerContext::find_model(const std::string& id,
                                                     httplib::Response& res) {
  auto model = models.find(id);
  if (!model) reply_error(res, 404, "no model '" + id + "' (GET /api/models lists them)");
  return model;
}

void ServerContext::submit_job(const httplib::Request& req, httplib::Response& res,
                               const std::string& kind, const std::string& model, JobWork work) {
  const int64_t wait_s = query_int(req, "wait", 0, 0, 600);
  const auto job = jobs.submit(kind, model, std::move(work));
  if (!job)
    return reply_error(res, 503, "the job queue is full: try again when a job has finished");
  if (wait_s > 0) return reply_json(res, 200, *jobs.wait(*job, std::chrono::seconds(wait_s)));
  reply_json(res, 202, *jobs.describe(*job, /*with_result=*/false));
}

bool ServerContext::take_stream_place(httplib::Response& res) {
  if (open_streams.fetch_add(1) >= static_cast<int>(options.max_streams)) {
    open_streams.fetch_sub(1);
    reply_error(res, 503,
                fmt::format("{} event streams are open already: close a tab", options.max_streams));
    return false;
  }
  return true;
}

namespace {

const char* kSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";

}  // namespace

struct WebServer::State : ServerContext {
  explicit State(ServerOptions o) : ServerContext(std::move(o)) {}

  socket_t listen_socket = -1;
  std::mutex stop_mutex;
  std::condition_variable stop_changed;
  bool stop_requested = false;
  bool listener_done = false;

  void install_routes();
};

void WebServer::State::install_routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const GuardVerdict verdict = guard->check(req);
    if (verdict.status == 0) return httplib::Server::HandlerResponse::Unhandled;
    spdlog::warn("refused {} {} ({}): {}", req.method, req.path, verdict.status, verdict.reason);
    reply_error(res, verdict.status, verdict.reason);
    return httplib::Server::HandlerResponse::Handled;
  });
  // A client that asks before sending its body (curl does above 1 MB) hears a refusal instead.
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    const GuardVerdict verdict = guard->check(req);
    if (verdict.status == 0) return 100;
    reply_error(res, verdict.status, verdict.reason);
    return verdict.status;
  });
  http.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", req.path.rfind("/api/", 0) == 0 ? "no-store" : "no-cache");
  });
  // Statuses httplib sets itself (404 of an unknown route, 400 of a bad request line) get a body.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    reply_error(res, res.status, fmt::format("{} {}: status {}", req.method, req.path, res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "unknown error";
        int status = 500;
        try {
          std::rethrow_exception(ep);
        } catch (const lf::Error& e) {
          message = e.what();
          status = 400;  // our errors name what the request got wrong
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
        }
        spdlog::warn("{} {}: {}", req.method, req.path, message);
        reply_error(res, status, message);
      });
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });

  http.Get("/api/health", [this](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200,
               {{"ok", true}, {"version", LF_VERSION}, {"event_streams", open_streams.load()}});
  });
  http.Get("/api/models", [this](const httplib::Request&, httplib::Response& res) {
    Json list = Json::array();
    for (const auto& m : models.scan()) {
      Json entry = m.to_json();
      entry["capabilities"] = model_capabilities(m);
      list.push_back(entry);
    }
    reply_json(res, 200, {{"models", list}});
  });
  http.Get(R"(/api/models/([A-Za-z0-9._-]+))", [this](const httplib::Request& req,
                                                      httplib::Response& res) {
    const auto model = models.find(req.matches[1]);
    if (!model)
      return reply_error(
          res, 404, "no model '" + std::string(req.matches[1]) + "' (GET /api/models lists them)");
    Json out = model->to_json();
    out["capabilities"] = model_capabilities(*model);
    try {
      const Json config = Config::from_yaml_file(model->dir + "/config.json").json();
      for (const char* section : {"model", "train"})
        if (config.contains(section)) out["config"][section] = config[section];
    } catch (const std::exception&) {
    }
    reply_json(res, 200, out);
  });
  http.Get("/api/jobs", [this](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, {{"jobs", jobs.list()}});
  });
  http.Get(R"(/api/jobs/([0-9]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const auto job = jobs.describe(req.matches[1]);
    if (!job) return reply_error(res, 404, "no job " + std::string(req.matches[1]));
    reply_json(res, 200, *job);
  });
  http.Post(R"(/api/jobs/([0-9]+)/cancel)",
            [this](const httplib::Request& req, httplib::Response& res) {
              if (!jobs.cancel(req.matches[1]))
                return reply_error(res, 404, "no job " + std::string(req.matches[1]));
              reply_json(res, 200, *jobs.describe(req.matches[1], /*with_result=*/false));
            });
  http.Get(R"(/api/jobs/([0-9]+)/events)", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!jobs.describe(id, /*with_result=*/false)) return reply_error(res, 404, "no job " + id);
    if (!take_stream_place(res)) return;
    res.set_header("X-Accel-Buffering", "no");
    auto seen = std::make_shared<uint64_t>(0);
    auto quiet_since =
        std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, id, seen, quiet_since](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& text) { return sink.write(text.data(), text.size()); };
          if (stopping) {
            sink.done();
            return true;
          }
          const auto update = jobs.next_update(id, *seen, std::chrono::milliseconds(1000));
          if (!update) {  // forgotten (the queue keeps the last finished jobs only)
            send(
                sse_event("result", {{"id", id}, {"state", "failed"}, {"error", "job forgotten"}}));
            sink.done();
            return true;
          }
          const auto now = std::chrono::steady_clock::now();
          if (update->version == *seen) {
            // A comment now and then: a closed tab shows up as a failed write.
            if (now - *quiet_since < std::chrono::seconds(2)) return true;
            *quiet_since = now;
            return send(": still running\n\n");
          }
          *seen = update->version;
          *quiet_since = now;
          if (!send(sse_event("job", update->job))) return false;
          if (!update->partial.is_null() && !send(sse_event("partial", update->partial)))
            return false;
          if (update->finished) {
            if (!send(sse_event("result", *update->finished))) return false;
            sink.done();
          }
          return true;
        },
        [this](bool) { open_streams.fetch_sub(1); });
  });
  install_model_routes(*this);
  install_run_routes(*this);
  // Everything else: an embedded page or asset, else 404.
  http.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
    if (const auto file = read_development_asset(req.path)) {
      res.set_content(*file, static_content_type(req.path == "/" ? "/index.html" : req.path));
      return;
    }
    const StaticAsset* asset = find_static_asset(req.path);
    if (!asset) return reply_error(res, 404, "no page " + req.path);
    res.set_content(reinterpret_cast<const char*>(asset->data), asset->size,
                    static_content_type(asset->path).c_str());
  });
}

WebServer::WebServer(ServerOptions options) : state_(std::make_unique<State>(std::move(options))) {}

WebServer::~WebServer() {
  stop();
}

int WebServer::bind() {
  State& s = *state_;
  const size_t threads = s.options.http_threads;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // One request per connection: a refused request's unread body never reaches the next parse,
  // and no idle keep-alive connection holds one of the few threads.
  // The listening socket: SO_REUSEADDR only (httplib's default also sets SO_REUSEPORT, which lets
  // another process bind the same port and take our connections), and kept to raise its backlog
  // below: Debian's httplib listens with a backlog of 5, and a burst of connections beyond that
  // gets refused or reset.
  s.http.set_socket_options([&s](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    s.listen_socket = sock;
  });
  s.http.set_keep_alive_max_count(1);
  s.http.set_payload_max_length(s.options.max_body_bytes);
  s.http.set_read_timeout(10, 0);
  s.http.set_write_timeout(10, 0);
  s.http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"X-Frame-Options", "DENY"},
                              {"Referrer-Policy", "no-referrer"},
                              {"Content-Security-Policy", kSecurityPolicy}});
  if (s.options.port == 0)
    s.port = s.http.bind_to_any_port(s.options.host);
  else
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  if (s.port <= 0)
    fail("serve", "cannot listen on {}:{} (address in use, or not an address of this machine)",
         s.options.host, s.options.port);
  if (s.listen_socket >= 0) ::listen(s.listen_socket, SOMAXCONN);  // Linux: raises the backlog
  std::vector<std::string> hosts = s.options.allow_hosts;
  hosts.push_back(s.options.host);
  s.guard = std::make_unique<RequestGuard>(s.port, hosts, s.options.max_body_bytes);
  s.training = std::make_unique<TrainingSupervisor>(
      s.options.binary, s.options.model_roots.empty() ? "" : s.options.model_roots.front(),
      s.options.configs_dir);
  s.install_routes();
  return s.port;
}

bool WebServer::run(std::chrono::milliseconds grace) {
  State& s = *state_;
  std::thread listener([&s] {
    s.http.listen_after_bind();
    std::lock_guard<std::mutex> lock(s.stop_mutex);
    s.listener_done = true;
    s.stop_changed.notify_all();
  });
  std::unique_lock<std::mutex> lock(s.stop_mutex);
  s.stop_changed.wait(lock, [&] { return s.stop_requested || s.listener_done; });
  const bool closed = s.stop_changed.wait_for(lock, grace, [&] { return s.listener_done; });
  lock.unlock();
  s.jobs.shutdown();
  if (s.training) s.training->shutdown();  // a run started here stops with a checkpoint
  if (!closed) {
    listener.detach();
    return false;
  }
  listener.join();
  return true;
}

void WebServer::stop() {
  state_->stopping = true;  // event streams end at their next wake-up
  {
    std::lock_guard<std::mutex> lock(state_->stop_mutex);
    state_->stop_requested = true;
    state_->stop_changed.notify_all();
  }
  state_->jobs.shutdown();  // wakes requests waiting on a job
  state_->http.stop();
}

}  // namespace lf::serve
