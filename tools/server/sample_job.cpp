// The sample page's job: see sample_job.h.
#include "server/sample_job.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "io/image.h"
#include "priors/prior_data.h"
#include "server/image_views.h"

namespace lf::serve {

namespace {

constexpr int64_t kMaxSamples = 64;
constexpr int64_t kMaxGridSide = 64;

template <typename T>
T sample_field(const Json& body, const char* key, T fallback, T lo, T hi) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const Json& v = body[key];
  if (!v.is_number() || (std::is_integral_v<T> && !v.is_number_integer()))
    fail("serve", "sample: '{}' must be a number", key);
  const T x = v.get<T>();
  if (!(x >= lo && x <= hi)) fail("serve", "sample: {} = {}, expected {}..{}", key, x, lo, hi);
  return x;
}

// Codes [N, h, w] (cells not generated yet: -1) decoded by the first stage; the cells not generated
// yet are shown grey. -> [N, C, H, W] on the CPU.
torch::Tensor decode_partial(AutoencoderImpl& stage1, const torch::Tensor& codes,
                             torch::Device device) {
  const torch::Tensor missing = codes.lt(0);
  torch::Tensor images =
      stage1.decode({{"indices", codes.clamp_min(0).to(device)}}).clamp(-1, 1).to(torch::kCPU);
  if (missing.any().item<bool>()) {
    const int64_t fy = images.size(2) / codes.size(1), fx = images.size(3) / codes.size(2);
    const torch::Tensor mask = missing.to(torch::kCPU)
                                   .repeat_interleave(fy, 1)
                                   .repeat_interleave(fx, 2)
                                   .unsqueeze(1)
                                   .expand_as(images);
    images = images.masked_fill(mask, 0.0);  // mid grey
  }
  return images;
}

std::string sample_grid_png(const torch::Tensor& images) {
  const torch::Tensor grid = make_grid(images, std::min<int64_t>(8, images.size(0)));
  return png_base64(grid, view_scale(grid.size(1), grid.size(2), 512));
}

}  // namespace

PriorSampleRequest PriorSampleRequest::from_json(const Json& body, const UploadLimits& limits) {
  if (!body.is_object()) fail("serve", "sample: expected a JSON object");
  PriorSampleRequest r;
  r.n = sample_field<int64_t>(body, "n", 8, 1, kMaxSamples);
  r.seed = static_cast<uint64_t>(sample_field<int64_t>(body, "seed", 0, 0, int64_t{1} << 53));
  r.sampling.temperature = sample_field<double>(body, "temperature", 1.0, 1e-3, 100.0);
  r.sampling.top_k = sample_field<int64_t>(body, "top_k", 0, 0, 1 << 20);
  r.sampling.top_p = sample_field<double>(body, "top_p", 1.0, 1e-6, 1.0);
  r.sampling.window_h = sample_field<int64_t>(body, "window_h", 0, 0, kMaxGridSide);
  if (body.contains("class") && !body["class"].is_null())
    r.label = sample_field<int64_t>(body, "class", 0, 0, 1 << 20);
  r.h = sample_field<int64_t>(body, "h", 0, 0, kMaxGridSide);
  r.w = sample_field<int64_t>(body, "w", 0, 0, kMaxGridSide);
  if ((r.h == 0) != (r.w == 0)) fail("serve", "sample: give both h and w, or neither");
  r.every = sample_field<int64_t>(body, "every", 0, 0, 1 << 20);
  if (body.contains("sketch") && !body["sketch"].is_null())
    r.sketch = parse_image_source(body["sketch"], "sketch", limits);
  if (body.contains("complete") && !body["complete"].is_null()) {
    const Json& c = body["complete"];
    if (!c.is_object() || !c.contains("image"))
      fail("serve", "sample: complete: expected {{\"image\": ..., \"keep\": 0.5}}");
    r.complete = parse_image_source(c["image"], "complete.image", limits);
    r.keep = sample_field<double>(c, "keep", 0.5, 0.0, 1.0);
  }
  return r;
}

Json sample_prior(const ServedModel& model, const PriorSampleRequest& r,
                  const JobSettings& settings, ModelCache& cache, JobContext& context) {
  const auto start = std::chrono::steady_clock::now();
  return with_clean_errors(model, "sample", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.02, "loading the prior");
    auto& loaded = cache.prior(model.dir, settings.device);
    const PriorPtr prior = loaded.model;
    const Config config = loaded.config;
    const PriorStages stages = PriorStages::from_config(config);
    context.progress(0.05, "loading its first stage");
    LoadedModel& stage1 = cache.autoencoder(stages.stage1, settings.device);
    const auto test = open_test_split(config);
    Json out;
    torch::NoGradGuard no_grad;

    PriorCondition cond;
    if (prior->num_classes() > 0) {
      if (r.label && *r.label >= prior->num_classes())
        fail("serve", "class {}: expected 0..{}", *r.label, prior->num_classes() - 1);
      cond.labels = r.label ? torch::full({r.n}, *r.label, torch::kInt64)
                            : torch::arange(r.n, torch::kInt64).remainder(prior->num_classes());
      cond.labels = cond.labels.to(settings.device);
    } else if (r.label) {
      fail("serve", "model '{}' is not class-conditional", model.id);
    }
    if (prior->cond_num_codes() > 0) {
      if (!r.sketch)
        fail("serve", "model '{}' is conditioned on a sketch: draw one (white lines on black)",
             model.id);
      LoadedModel& cond_stage = cache.autoencoder(stages.cond_stage, settings.device);
      const torch::Tensor sketch =
          load_image_source(*r.sketch, cond_stage.config, nullptr, settings.max_side, "sketch");
      const torch::Tensor codes =
          cond_stage.model->encode(sketch.unsqueeze(0).to(settings.device)).at("indices");
      cond.cond_codes = codes.expand({r.n, -1, -1}).contiguous();
      out["sketch"] = png_base64(sketch, view_scale(sketch.size(1), sketch.size(2), 96));
    } else if (r.sketch) {
      fail("serve", "model '{}' is not conditioned on a sketch", model.id);
    }

    int64_t h = r.h, w = r.w;
    SamplingOptions sampling = r.sampling;
    if (r.complete) {
      const torch::Tensor image =
          load_image_source(*r.complete, stage1.config, test.get(), settings.max_side, "image");
      const torch::Tensor codes =
          stage1.model->encode(image.unsqueeze(0).to(settings.device)).at("indices");
      if (h == 0) {
        h = codes.size(1);
        w = codes.size(2);
      } else if (h != codes.size(1) || w != codes.size(2)) {
        fail("serve", "completion: the image's code grid is {}x{}, the grid asked {}x{}",
             codes.size(1), codes.size(2), h, w);
      }
      sampling.given = codes.to(torch::kCPU);
      sampling.given_cells = std::llround(r.keep * h * w);
      torch::Tensor kept = sampling.given.clone().view({1, -1});
      kept.slice(1, sampling.given_cells).fill_(-1);
      const torch::Tensor shown =
          decode_partial(*stage1.model, kept.view({1, h, w}), settings.device)[0];
      out["given"] = png_base64(shown, view_scale(shown.size(1), shown.size(2), 96));
      out["given_cells"] = sampling.given_cells;
    }
    if (h == 0) {
      h = prior->grid()[0];
      w = prior->grid()[1];
    }
    if (cond.cond_codes.defined() && r.h == 0) {
      h = cond.cond_codes.size(1);
      w = cond.cond_codes.size(2);
    }
    const int64_t total = h * w;
    sampling.progress_every = r.every > 0 ? r.every : std::max<int64_t>(1, total / 12);
    sampling.on_progress = [&](const torch::Tensor& codes, int64_t done) {
      if (done == total) return;  // the result has it
      const torch::Tensor images = decode_partial(*stage1.model, codes, settings.device);
      context.partial({{"image", sample_grid_png(images)}, {"done", done}, {"total", total}});
      context.progress(0.1 + 0.85 * done / total, fmt::format("sampling {}/{}", done, total));
    };
    context.progress(0.1, "sampling");
    auto generator = make_generator(r.seed);
    const torch::Tensor codes = prior->sample(r.n, h, w, cond, sampling, generator);
    context.progress(0.96, "decoding");
    const torch::Tensor images = decode_partial(*stage1.model, codes, settings.device);
    const int64_t scale = view_scale(images.size(2), images.size(3), 96);
    Json list = Json::array();
    for (int64_t i = 0; i < images.size(0); ++i) list.push_back(png_base64(images[i], scale));
    const torch::Tensor flat = codes.to(torch::kCPU).reshape({codes.size(0), -1}).contiguous();
    Json code_maps = Json::array();
    for (int64_t i = 0; i < flat.size(0); ++i)
      code_maps.push_back(std::vector<int64_t>(flat[i].data_ptr<int64_t>(),
                                               flat[i].data_ptr<int64_t>() + flat.size(1)));
    out["codes"] = code_maps;
    Json labels = Json::array();
    if (cond.labels.defined())
      for (int64_t i = 0; i < r.n; ++i) labels.push_back(cond.labels[i].item<int64_t>());
    out["image"] = sample_grid_png(images);
    out["images"] = list;
    out["labels"] = labels;
    out["h"] = h;
    out["w"] = w;
    out["view_scale"] = scale;
    out["seed"] = r.seed;
    out["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  });
}

}  // namespace lf::serve
