// Runs and training, for the train page:
//   GET  /api/runs/{id}/log[?after=STEP]       log.jsonl records (run_files.h)
//   GET  /api/runs/{id}/images/{name}.png      a run's picture, re-encoded
//   GET  /api/runs/{id}/previews               {steps}: reconstructions of a fixed batch over time
//   GET  /api/runs/{id}/previews/{step}.png
//   GET  /api/runs/{id}/events[?after=STEP]    new log records, training state, previews (SSE)
//   GET  /api/configs                          the configs a run may be started from
//   POST /api/train                            {config, name, steps?, stage1?, cond_stage?}
//   GET  /api/training                         the training child's state
//   POST /api/runs/{id}/stop | resume
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "server/run_files.h"
#include "server/server_context.h"

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

constexpr const char* kRunId = R"(/api/runs/([A-Za-z0-9._-]+))";

std::string run_route(const char* rest) {
  return std::string(kRunId) + rest;
}

// The run with this id (a folder with a log.jsonl), or nullopt after answering 404.
std::optional<ServedModel> find_run(ServerContext& s, const std::string& id,
                                    httplib::Response& res) {
  auto model = s.models.find(id);
  if (!model || !model->has_log) {
    reply_error(res, 404, "no run '" + id + "' with a log.jsonl (GET /api/models lists them)");
    return std::nullopt;
  }
  return model;
}

// A served model's folder from its id (the train page's stage1 / cond_stage choice).
std::string model_dir_of(ServerContext& s, const Json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return "";
  if (!body[key].is_string()) fail("serve", "'{}': expected a model id", key);
  const auto model = s.models.find(body[key].get<std::string>());
  if (!model || !model->has_codes())
    fail("serve", "{} '{}': expected the id of a trained VQ model", key,
         body[key].get<std::string>());
  return model->dir;
}

// What an event stream of a run keeps between wake-ups.
struct RunStream {
  std::string dir;
  int64_t after = -1;
  uintmax_t log_size = static_cast<uintmax_t>(-1);
  uint64_t training_version = static_cast<uint64_t>(-1);
  size_t previews = static_cast<size_t>(-1);
  bool first = true;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
};

}  // namespace

void install_run_routes(ServerContext& s) {
  s.http.Get(run_route("/log"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = find_run(s, req.matches[1], res);
    if (!model) return;
    const int64_t after = query_int(req, "after", -1, -1, int64_t{1} << 50);
    Json out = read_run_log(model->dir, after);
    out["id"] = model->id;
    out["kind"] = model->kind;
    out["images"] = model->images;
    out["metrics"] = model->metrics;
    reply_json(res, 200, out);
  });

  s.http.Get(run_route(R"(/images/([a-z_]+)\.png)"), [&s](const httplib::Request& req,
                                                          httplib::Response& res) {
    const std::string name = req.matches[2];
    const auto& names = run_image_names();
    const auto model = s.models.find(req.matches[1]);
    if (!model || std::find(names.begin(), names.end(), name) == names.end())
      return reply_error(res, 404,
                         "no picture '" + name + "' of run '" + std::string(req.matches[1]) + "'");
    const std::string png = run_image_png(model->dir, name);
    if (png.empty())
      return reply_error(res, 404, "run '" + model->id + "' has no " + name + ".png yet");
    res.set_content(png, "image/png");
  });

  s.http.Get(run_route("/previews"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = find_run(s, req.matches[1], res);
    if (!model) return;
    reply_json(res, 200, {{"steps", run_preview_steps(model->dir)}});
  });

  s.http.Get(run_route(R"(/previews/([0-9]{1,9})\.png)"),
             [&s](const httplib::Request& req, httplib::Response& res) {
               const auto model = find_run(s, req.matches[1], res);
               if (!model) return;
               const std::string png = run_preview_png(model->dir, std::stoll(req.matches[2]));
               if (png.empty())
                 return reply_error(res, 404,
                                    "run '" + model->id + "' has no preview at step " +
                                        std::string(req.matches[2]));
               res.set_content(png, "image/png");
             });

  s.http.Get(run_route("/events"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = find_run(s, req.matches[1], res);
    if (!model) return;
    auto stream = std::make_shared<RunStream>();
    stream->dir = model->dir;
    stream->after = query_int(req, "after", -1, -1, int64_t{1} << 50);
    if (!s.take_stream_place(res)) return;
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [&s, stream](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& text) {
            stream->last_write = std::chrono::steady_clock::now();
            return sink.write(text.data(), text.size());
          };
          if (s.stopping) {
            sink.done();
            return true;
          }
          if (!stream->first) std::this_thread::sleep_for(std::chrono::milliseconds(1000));
          stream->first = false;
          if (s.stopping) {
            sink.done();
            return true;
          }
          std::error_code ec;
          const uintmax_t size = fs::file_size(stream->dir + "/log.jsonl", ec);
          if (!ec && size != stream->log_size) {
            stream->log_size = size;
            Json out = read_run_log(stream->dir, stream->after);
            if (!out["records"].empty()) {
              stream->after = out["last_step"].get<int64_t>();
              if (!send(sse_event("records", out))) return false;
            }
          }
          const uint64_t version = s.training->version();
          if (version != stream->training_version) {
            stream->training_version = version;
            if (!send(sse_event("training", s.training->status()))) return false;
          }
          const auto steps = run_preview_steps(stream->dir);
          if (steps.size() != stream->previews) {
            stream->previews = steps.size();
            if (!send(sse_event("previews", {{"steps", steps}}))) return false;
          }
          // A comment now and then: a closed tab shows up as a failed write.
          if (std::chrono::steady_clock::now() - stream->last_write > std::chrono::seconds(2))
            return send(": waiting\n\n");
          return true;
        },
        [&s](bool) { s.open_streams.fetch_sub(1); });
  });

  s.http.Get("/api/configs", [&s](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, s.training->configs());
  });

  s.http.Get("/api/training", [&s](const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200, s.training->status());
  });

  s.http.Post("/api/train", [&s](const httplib::Request& req, httplib::Response& res) {
    if (s.options.model_roots.empty())
      return reply_error(res, 400, "no --models folder to train into");
    const Json body = json_body(req);
    TrainStart r;
    if (!body.contains("config") || !body["config"].is_string() || !body.contains("name") ||
        !body["name"].is_string())
      return reply_error(res, 400, "expected {\"config\": NAME, \"name\": RUN_NAME}");
    r.config = body["config"].get<std::string>();
    r.name = body["name"].get<std::string>();
    if (body.contains("steps") && !body["steps"].is_null()) {
      if (!body["steps"].is_number_integer())
        return reply_error(res, 400, "'steps': expected an integer");
      r.steps = body["steps"].get<int64_t>();
      if (r.steps < 1) return reply_error(res, 400, "'steps': expected at least 1");
    }
    r.stage1 = model_dir_of(s, body, "stage1");
    r.cond_stage = model_dir_of(s, body, "cond_stage");
    try {
      const std::string run = s.training->start(r);
      spdlog::info("training '{}' from config '{}'", run, r.config);
      reply_json(res, 202, {{"run", run}, {"training", s.training->status()}});
    } catch (const TrainingBusy& e) {
      reply_error(res, 409, e.what());
    }
  });

  s.http.Post(run_route("/stop"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = find_run(s, req.matches[1], res);
    if (!model) return;
    if (!s.training->stop(model->dir))
      return reply_error(res, 409, "run '" + model->id + "' is not training here");
    reply_json(res, 200, s.training->status());
  });

  s.http.Post(run_route("/resume"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = find_run(s, req.matches[1], res);
    if (!model) return;
    bool under_root = false;
    for (const auto& root : s.options.model_roots) {
      std::error_code ec;
      if (fs::weakly_canonical(fs::path(model->dir).parent_path(), ec) ==
          fs::weakly_canonical(root, ec))
        under_root = true;
    }
    if (!under_root)
      return reply_error(res, 400, "run '" + model->id + "' is not a folder under --models");
    try {
      s.training->resume(model->dir, model->id);
      reply_json(res, 202, {{"run", model->id}, {"training", s.training->status()}});
    } catch (const TrainingBusy& e) {
      reply_error(res, 409, e.what());
    }
  });
}

}  // namespace lf::serve
