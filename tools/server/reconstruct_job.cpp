// The reconstruct job: see reconstruct_job.h.
#include "server/reconstruct_job.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "eval/image_metrics.h"
#include "io/image.h"
#include "model_source.h"
#include "server/image_views.h"

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

// The side the model was trained at: data.image_size, 28 for IDX data (native size), 64 for image
// folders (the dataset default); 0 when the model has no data section (an imported model).
int64_t recon_training_side(const Config& config) {
  if (!config.has("data")) return 0;
  const int64_t size = config.get<int64_t>("data.image_size", 0);
  if (size > 0) return size;
  const std::string root = config.get<std::string>("data.root", "");
  if (root.empty() || root == "fashion-mnist" || root == "mnist") return 28;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find("idx3-ubyte") != std::string::npos) return 28;
  return 64;
}

// The downsampling factor of the taming / ldm coders, 2^(len(ch_mult) - 1); 16 when unknown.
int64_t recon_factor(const Config& config) {
  for (const char* key : {"model.ddconfig.ch_mult", "model.ch_mult"})
    if (const Json* mult = config.find(key); mult && mult->is_array() && !mult->empty())
      return int64_t{1} << (mult->size() - 1);
  return 16;
}

// [C, H, W] upload -> the model's input [C', H', W'].
torch::Tensor recon_model_input(torch::Tensor x, const Config& config, int64_t max_side) {
  const int64_t side = recon_training_side(config);
  if (side > 0) return center_crop_resize(x, side, side);
  int64_t h = x.size(1), w = x.size(2);
  if (std::max(h, w) > max_side) {
    const double s = static_cast<double>(max_side) / std::max(h, w);
    h = std::max<int64_t>(1, std::llround(h * s));
    w = std::max<int64_t>(1, std::llround(w * s));
    x = resize_image(x, h, w);
  }
  const int64_t f = recon_factor(config);
  const int64_t ch = std::max(f, h / f * f), cw = std::max(f, w / f * f);
  if (ch != h || cw != w) x = center_crop_resize(x, ch, cw);
  return x;
}

// The browser is told the model's folder name, not where it lives.
std::string recon_without_path(std::string message, const ServedModel& model) {
  for (size_t at = 0; (at = message.find(model.dir, at)) != std::string::npos;
       at += model.name.size())
    message.replace(at, model.dir.size(), model.name);
  return message;
}

std::string recon_png64(const torch::Tensor& image, int64_t scale) {
  return base64_encode(encode_png(upscale_nearest(image, scale)));
}

}  // namespace

LoadedModel& ModelCache::get(const ServedModel& model, torch::Device device) {
  std::error_code ec;
  const auto stamp = fs::last_write_time(model.weights, ec);
  const std::string key = model.dir + "|" + model.weights + "|" +
                          std::to_string(ec ? 0 : stamp.time_since_epoch().count());
  if (key != key_ || !loaded_.model) {
    loaded_ = {};
    key_.clear();
    cli::ModelSource source;
    source.model = model.dir;
    loaded_ = cli::open_model_source(source, device);
    key_ = key;
  }
  return loaded_;
}

Json reconstruct_upload(const ServedModel& model, const std::string& upload,
                        const ReconstructSettings& settings, ModelCache& cache,
                        JobContext& context) {
  const auto start = std::chrono::steady_clock::now();
  try {
    if (settings.threads > 0 && torch::get_num_threads() != settings.threads)
      torch::set_num_threads(settings.threads);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.get(model, settings.device);
    context.progress(0.2, "decoding upload");
    const ImageInfo info = probe_image(upload, "upload");
    const int64_t channels = cli::model_in_channels(loaded.config);
    const torch::Tensor x = recon_model_input(
        decode_image(upload, "upload", channels == 1 || channels == 3 ? channels : 0),
        loaded.config, settings.max_side);
    context.progress(0.3, "reconstructing");
    torch::Tensor y;
    {
      torch::NoGradGuard no_grad;
      y = loaded.model->reconstruct(x.unsqueeze(0).to(settings.device))
              .clamp(-1, 1)
              .to(torch::kCPU)[0];
    }
    context.progress(0.8, "scoring");
    const torch::Tensor xb = x.unsqueeze(0), yb = y.unsqueeze(0);
    const double mse = mse_per_image(xb, yb)[0].item<double>();
    const double psnr = psnr_per_image(xb, yb)[0].item<double>();
    Json ssim;  // SSIM's 11x11 window needs images of at least 11 px
    if (x.size(1) >= 11 && x.size(2) >= 11) ssim = ssim_per_image(xb, yb)[0].item<double>();
    double max_error = 0;
    const torch::Tensor heat = error_heat_map(x, y, max_error);
    context.progress(0.9, "encoding images");
    const int64_t scale = view_scale(x.size(1), x.size(2));
    return {
        {"model", model.id},
        {"kind", model.kind},
        {"upload", {{"width", info.width}, {"height", info.height}, {"channels", info.channels}}},
        {"input", {{"width", x.size(2)}, {"height", x.size(1)}, {"channels", x.size(0)}}},
        {"view_scale", scale},
        {"images",
         {{"input", recon_png64(x, scale)},
          {"reconstruction", recon_png64(y, scale)},
          {"error", recon_png64(heat, scale)}}},
        {"mse", mse},
        {"psnr", psnr},
        {"ssim", ssim},
        {"max_error", max_error},
        {"seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  } catch (const JobCancelled&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(recon_without_path(
        fmt::format("[reconstruct] {}: {}", model.id, e.what_without_backtrace()), model));
  } catch (const std::exception& e) {
    throw Error(recon_without_path(e.what(), model));
  }
}

}  // namespace lf::serve
