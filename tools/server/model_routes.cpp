// The pages' model work: test images, reconstruct, the codebook page (encode, decode, code usage),
// the latent page (interpolate, traverse, sample a VAE) and the sample page (sample a prior). Every
// model operation is a job on the one queue (server_context.h: submit_job).
//   GET  /api/models/{id}/test_images?offset=&count=   thumbnails of the test split
//   POST /api/models/{id}/reconstruct                  body: an image, or {"image": {...}}
//   POST /api/models/{id}/encode | decode | code_usage
//   POST /api/models/{id}/interpolate | traverse | sample
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "io/image.h"
#include "server/codebook_jobs.h"
#include "server/image_views.h"
#include "server/latent_jobs.h"
#include "server/model_inputs.h"
#include "server/sample_job.h"
#include "server/server_context.h"

namespace lf::serve {

namespace {

constexpr const char* kModelId = R"(/api/models/([A-Za-z0-9._-]+))";

std::string model_route(const char* action) {
  return std::string(kModelId) + "/" + action;
}

// Runs a handler, answering 413 for an upload above the limits (the rest of the errors go to the
// server's exception handler: 400 for lf::Error).
template <typename F>
void with_upload_limits(httplib::Response& res, F&& handler) {
  try {
    handler();
  } catch (const UploadTooLarge& e) {
    reply_error(res, 413, e.what());
  }
}

int64_t body_int(const Json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_number_integer()) fail("serve", "'{}': expected an integer", key);
  const int64_t v = body[key].get<int64_t>();
  if (v < lo || v > hi) fail("serve", "'{}' = {}: expected {}..{}", key, v, lo, hi);
  return v;
}

double body_number(const Json& body, const char* key, double fallback, double lo, double hi) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_number()) fail("serve", "'{}': expected a number", key);
  const double v = body[key].get<double>();
  if (!(v >= lo && v <= hi)) fail("serve", "'{}' = {}: expected {}..{}", key, v, lo, hi);
  return v;
}

const Json& body_field(const Json& body, const char* key) {
  if (!body.contains(key)) fail("serve", "expected '{}' in the request", key);
  return body[key];
}

bool is_json(const httplib::Request& req) {
  return req.get_header_value("Content-Type").rfind("application/json", 0) == 0;
}

// Refuses a model that cannot do what was asked (400 with the reason); true when it can.
bool require(httplib::Response& res, bool can, const ServedModel& model, const char* needs) {
  if (can) return true;
  reply_error(res, 400,
              fmt::format("model '{}' is a {}{}: {}", model.id, model.kind,
                          model.ready() ? "" : " without weights yet", needs));
  return false;
}

}  // namespace

void install_model_routes(ServerContext& s) {
  s.http.Get(model_route("test_images"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = s.find_model(req.matches[1], res);
    if (!model) return;
    if (!model->config.is_object()) return reply_error(res, 400, "model has no config");
    const auto test = open_test_split(Config(model->config));
    if (!test) return reply_json(res, 200, {{"total", 0}, {"images", Json::array()}});
    const int64_t offset = query_int(req, "offset", 0, 0, std::max<int64_t>(0, test->size() - 1));
    const int64_t count = query_int(req, "count", 16, 1, 64);
    const auto names = test->class_names();
    Json images = Json::array();
    int64_t scale = 1;
    for (int64_t i = offset; i < std::min(test->size(), offset + count); ++i) {
      const torch::Tensor x = test->get_image(i);
      scale = view_scale(x.size(1), x.size(2), 64);
      const int64_t label = test->get_label(i);
      images.push_back(
          {{"index", i},
           {"label", label},
           {"class_name",
            label >= 0 && label < static_cast<int64_t>(names.size()) ? Json(names[label]) : Json()},
           {"image", png_base64(x, scale)}});
    }
    reply_json(res, 200, {{"total", test->size()}, {"images", images}, {"view_scale", scale}});
  });

  s.http.Post(model_route("reconstruct"), [&s](const httplib::Request& req,
                                               httplib::Response& res) {
    with_upload_limits(res, [&] {
      const auto model = s.find_model(req.matches[1], res);
      if (!model) return;
      if (!require(res, model->reconstructs(), *model, "reconstruction needs an image autoencoder"))
        return;
      ImageSource image;
      if (is_json(req)) {
        image = parse_image_source(body_field(json_body(req), "image"), "image", s.upload_limits());
      } else {
        if (req.body.empty())
          return reply_error(res, 400, "expected an image (PNG, JPEG or BMP) as the request body");
        // The header only: the size is checked before a single pixel is decoded.
        check_upload(req.body, "image", s.upload_limits());
        image.upload = req.body;
      }
      s.submit_job(req, res, "reconstruct", model->id,
                   [&s, model = *model, image = std::move(image),
                    settings = s.job_settings()](JobContext& context) {
                     return reconstruct_image(model, image, settings, s.cache, context);
                   });
    });
  });

  s.http.Post(model_route("encode"), [&s](const httplib::Request& req, httplib::Response& res) {
    with_upload_limits(res, [&] {
      const auto model = s.find_model(req.matches[1], res);
      if (!model || !require(res, model->has_codes(), *model, "encoding to codes needs a VQ model"))
        return;
      ImageSource image =
          parse_image_source(body_field(json_body(req), "image"), "image", s.upload_limits());
      s.submit_job(req, res, "encode", model->id,
                   [&s, model = *model, image = std::move(image),
                    settings = s.job_settings()](JobContext& context) {
                     return encode_codes(model, image, settings, s.cache, context);
                   });
    });
  });

  s.http.Post(model_route("decode"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = s.find_model(req.matches[1], res);
    if (!model || !require(res, model->has_codes(), *model, "decoding codes needs a VQ model"))
      return;
    CodeMap codes = CodeMap::from_json(json_body(req));
    s.submit_job(req, res, "decode", model->id,
                 [&s, model = *model, codes = std::move(codes),
                  settings = s.job_settings()](JobContext& context) {
                   return decode_codes(model, codes, settings, s.cache, context);
                 });
  });

  s.http.Post(model_route("code_usage"), [&s](const httplib::Request& req, httplib::Response& res) {
    const auto model = s.find_model(req.matches[1], res);
    if (!model || !require(res, model->has_codes(), *model, "code usage needs a VQ model")) return;
    const Json body = req.body.empty() ? Json::object() : json_body(req);
    const int64_t limit = body_int(body, "limit", 10000, 1, 1000000);
    s.submit_job(req, res, "code_usage", model->id,
                 [&s, model = *model, limit, settings = s.job_settings()](JobContext& context) {
                   return code_usage(model, limit, settings, s.cache, s.usage_memo, context);
                 });
  });

  s.http.Post(model_route("interpolate"), [&s](const httplib::Request& req,
                                               httplib::Response& res) {
    with_upload_limits(res, [&] {
      const auto model = s.find_model(req.matches[1], res);
      if (!model ||
          !require(res, model->has_latent(), *model, "interpolation needs an ae, vae or kl model"))
        return;
      const Json body = json_body(req);
      InterpolateRequest r;
      r.a = parse_image_source(body_field(body, "a"), "a", s.upload_limits());
      r.b = parse_image_source(body_field(body, "b"), "b", s.upload_limits());
      r.steps = body_int(body, "steps", 9, 2, 33);
      const std::string mode = body.value("mode", std::string("linear"));
      if (mode != "linear" && mode != "spherical")
        return reply_error(res, 400, "mode '" + mode + "': expected linear or spherical");
      r.spherical = mode == "spherical";
      s.submit_job(
          req, res, "interpolate", model->id,
          [&s, model = *model, r = std::move(r), settings = s.job_settings()](JobContext& context) {
            return interpolate_latents(model, r, settings, s.cache, context);
          });
    });
  });

  s.http.Post(model_route("traverse"), [&s](const httplib::Request& req, httplib::Response& res) {
    with_upload_limits(res, [&] {
      const auto model = s.find_model(req.matches[1], res);
      if (!model ||
          !require(res, model->has_latent(), *model, "traversal needs an ae, vae or kl model"))
        return;
      const Json body = json_body(req);
      TraverseRequest r;
      r.image = parse_image_source(body_field(body, "image"), "image", s.upload_limits());
      r.dim = body_int(body, "dim", 0, 0, 1 << 20);
      r.span = body_number(body, "span", 3.0, 0.0, 100.0);
      r.steps = body_int(body, "steps", 9, 2, 33);
      s.submit_job(
          req, res, "traverse", model->id,
          [&s, model = *model, r = std::move(r), settings = s.job_settings()](JobContext& context) {
            return traverse_latent(model, r, settings, s.cache, context);
          });
    });
  });

  s.http.Post(model_route("sample"), [&s](const httplib::Request& req, httplib::Response& res) {
    with_upload_limits(res, [&] {
      const auto model = s.find_model(req.matches[1], res);
      if (!model) return;
      const Json body = req.body.empty() ? Json::object() : json_body(req);
      if (model->is_prior()) {
        PriorSampleRequest r = PriorSampleRequest::from_json(body, s.upload_limits());
        return s.submit_job(req, res, "sample", model->id,
                            [&s, model = *model, r = std::move(r),
                             settings = s.job_settings()](JobContext& context) {
                              return sample_prior(model, r, settings, s.cache, context);
                            });
      }
      if (!require(res, model->kind == "vae" && model->ready(), *model,
                   "sampling needs a vae (N(0, I)) or a prior (gpt, pixelcnn)"))
        return;
      const int64_t n = body_int(body, "n", 16, 1, 64);
      const auto seed = static_cast<uint64_t>(body_int(body, "seed", 0, 0, int64_t{1} << 53));
      s.submit_job(req, res, "sample", model->id,
                   [&s, model = *model, n, seed, settings = s.job_settings()](JobContext& context) {
                     return sample_autoencoder(model, n, seed, settings, s.cache, context);
                   });
    });
  });
}

}  // namespace lf::serve
