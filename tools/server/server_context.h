// What the server's route handlers share (web_server.cpp, model_routes.cpp, run_routes.cpp): the
// options, the HTTP server, the served models, the job queue and its models, the training child,
// and small helpers for answers.
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "server/job_queue.h"
#include "server/model_cache.h"
#include "server/reconstruct_job.h"
#include "server/request_guard.h"
#include "server/served_models.h"
#include "server/training_supervisor.h"
#include "server/web_server.h"

namespace lf::serve {

struct ServerContext {
  explicit ServerContext(ServerOptions o);

  ServerOptions options;
  httplib::Server http;
  ServedModels models;
  JobQueue jobs;
  ModelCache cache;                        // used only by the job queue's worker
  std::map<std::string, Json> usage_memo;  // code usage per weights file (worker only)
  std::unique_ptr<RequestGuard> guard;
  std::unique_ptr<TrainingSupervisor> training;
  std::atomic<bool> stopping{false};
  std::atomic<int> open_streams{0};
  int port = 0;

  JobSettings job_settings() const;
  UploadLimits upload_limits() const;
  // The model with this id, or nullopt after answering 404.
  std::optional<ServedModel> find_model(const std::string& id, httplib::Response& res);
  // Queues `work` and answers: 202 with the job, 200 with its result when the request has
  // ?wait=S, 503 when the queue is full.
  void submit_job(const httplib::Request& req, httplib::Response& res, const std::string& kind,
                  const std::string& model, JobWork work);
  // Takes one of the event-stream places (false: all taken, 503 answered); the stream's releaser
  // must give it back.
  bool take_stream_place(httplib::Response& res);
};

void reply_json(httplib::Response& res, int status, const Json& body);
void reply_error(httplib::Response& res, int status, const std::string& message);
// An integer query parameter within [lo, hi]; fallback when absent; throws lf::Error when bad.
int64_t query_int(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo,
                  int64_t hi);
// The request's body as a JSON object; throws lf::Error (400) naming what is wrong.
Json json_body(const httplib::Request& req);
// One server-sent event: "event: NAME\ndata: JSON\n\n".
std::string sse_event(const std::string& name, const Json& data);

// The routes of the pages' model work (model_routes.cpp) and of runs and training
// (run_routes.cpp).
void install_model_routes(ServerContext& server);
void install_run_routes(ServerContext& server);

}  // namespace lf::serve
