// The latent page's jobs: see latent_jobs.h.
#include "server/latent_jobs.h"

#include <cmath>

#include "core/error.h"
#include "io/image.h"
#include "server/image_views.h"

namespace lf::serve {

namespace {

// The deterministic latent of x [C, H, W]: the mean for a VAE, the latent otherwise.
torch::Tensor latent_of(AutoencoderImpl& model, const torch::Tensor& x, torch::Device device) {
  const TensorMap code = model.encode(x.unsqueeze(0).to(device));
  if (const auto it = code.find("latents"); it != code.end()) return it->second;
  fail("serve", "a {} model gives no continuous latent", model.kind());
}

torch::Tensor decode_latent(AutoencoderImpl& model, const torch::Tensor& z) {
  return model.decode({{"latents", z}}).clamp(-1, 1).to(torch::kCPU)[0];
}

void require_latent(const ServedModel& model) {
  if (!model.has_latent())
    fail("serve", "model '{}' is a {}: the latent page needs an ae, vae or autoencoder_kl",
         model.id, model.kind);
}

}  // namespace

torch::Tensor interpolate(const torch::Tensor& a, const torch::Tensor& b, double t,
                          bool spherical) {
  if (!spherical) return a * (1 - t) + b * t;
  const torch::Tensor fa = a.to(torch::kFloat64).flatten(), fb = b.to(torch::kFloat64).flatten();
  const double na = fa.norm().item<double>(), nb = fb.norm().item<double>();
  if (na == 0 || nb == 0) return a * (1 - t) + b * t;
  const double cosine = std::clamp((fa / na).dot(fb / nb).item<double>(), -1.0, 1.0);
  const double omega = std::acos(cosine);
  if (omega < 1e-6) return a * (1 - t) + b * t;
  const torch::Tensor direction = (fa / na) * (std::sin((1 - t) * omega) / std::sin(omega)) +
                                  (fb / nb) * (std::sin(t * omega) / std::sin(omega));
  return (direction * ((1 - t) * na + t * nb)).to(a.scalar_type()).view(a.sizes());
}

Json interpolate_latents(const ServedModel& model, const InterpolateRequest& r,
                         const JobSettings& settings, ModelCache& cache, JobContext& context) {
  require_latent(model);
  return with_clean_errors(model, "interpolate", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    const auto test = open_test_split(loaded.config);
    const torch::Tensor xa =
        load_image_source(r.a, loaded.config, test.get(), settings.max_side, "a");
    const torch::Tensor xb =
        load_image_source(r.b, loaded.config, test.get(), settings.max_side, "b");
    if (!xa.sizes().equals(xb.sizes()))
      fail("serve", "images a ({}x{}) and b ({}x{}) must have the same size for this model",
           xa.size(1), xa.size(2), xb.size(1), xb.size(2));
    torch::NoGradGuard no_grad;
    context.progress(0.15, "encoding");
    const torch::Tensor za = latent_of(*loaded.model, xa, settings.device);
    const torch::Tensor zb = latent_of(*loaded.model, xb, settings.device);
    const int64_t scale = view_scale(xa.size(1), xa.size(2));
    Json frames = Json::array(), ts = Json::array();
    for (int64_t i = 0; i < r.steps; ++i) {
      const double t = static_cast<double>(i) / (r.steps - 1);
      context.progress(0.2 + 0.75 * i / r.steps, "decoding");
      frames.push_back(
          png_base64(decode_latent(*loaded.model, interpolate(za, zb, t, r.spherical)), scale));
      ts.push_back(t);
    }
    return {{"frames", frames},
            {"t", ts},
            {"mode", r.spherical ? "spherical" : "linear"},
            {"a", png_base64(xa, scale)},
            {"b", png_base64(xb, scale)},
            {"view_scale", scale}};
  });
}

Json traverse_latent(const ServedModel& model, const TraverseRequest& r,
                     const JobSettings& settings, ModelCache& cache, JobContext& context) {
  require_latent(model);
  return with_clean_errors(model, "traverse", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    const auto test = open_test_split(loaded.config);
    const torch::Tensor x =
        load_image_source(r.image, loaded.config, test.get(), settings.max_side, "image");
    torch::NoGradGuard no_grad;
    context.progress(0.15, "encoding");
    const torch::Tensor z = latent_of(*loaded.model, x, settings.device);
    const int64_t dims = z.size(1);  // [1, D] or [1, C, h, w]: the channel
    if (r.dim < 0 || r.dim >= dims)
      fail("serve", "dim {}: expected 0..{} (the latent has {} dimensions)", r.dim, dims - 1, dims);
    const int64_t scale = view_scale(x.size(1), x.size(2));
    Json frames = Json::array(), values = Json::array();
    for (int64_t i = 0; i < r.steps; ++i) {
      const double v = -r.span + 2 * r.span * i / (r.steps - 1);
      context.progress(0.2 + 0.75 * i / r.steps, "decoding");
      torch::Tensor shifted = z.clone();
      shifted.select(1, r.dim).add_(v);
      frames.push_back(png_base64(decode_latent(*loaded.model, shifted), scale));
      values.push_back(v);
    }
    std::vector<int64_t> shape(z.sizes().begin() + 1, z.sizes().end());
    return {{"frames", frames},
            {"values", values},
            {"dims", dims},
            {"latent_shape", shape},
            {"input", png_base64(x, scale)},
            {"view_scale", scale}};
  });
}

Json sample_autoencoder(const ServedModel& model, int64_t n, uint64_t seed,
                        const JobSettings& settings, ModelCache& cache, JobContext& context) {
  return with_clean_errors(model, "sample", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    context.progress(0.3, "sampling");
    torch::manual_seed(seed);  // the worker runs one job at a time: the global generator is ours
    torch::NoGradGuard no_grad;
    const torch::Tensor images = loaded.model->sample(n).clamp(-1, 1).to(torch::kCPU);
    const int64_t scale = view_scale(images.size(2), images.size(3), 96);
    Json list = Json::array();
    for (int64_t i = 0; i < n; ++i) list.push_back(png_base64(images[i], scale));
    const int64_t nrow = std::min<int64_t>(8, n);
    const torch::Tensor grid = make_grid(images, nrow);
    return {{"image", png_base64(grid, view_scale(grid.size(1), grid.size(2), 512))},
            {"images", list},
            {"view_scale", scale},
            {"seed", seed}};
  });
}

}  // namespace lf::serve
