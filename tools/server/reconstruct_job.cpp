// The reconstruct job: see reconstruct_job.h.
#include "server/reconstruct_job.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "eval/image_metrics.h"
#include "io/image.h"
#include "model_source.h"
#include "server/image_views.h"

namespace lf::serve {

void apply_job_threads(const JobSettings& settings) {
  if (settings.threads > 0 && torch::get_num_threads() != settings.threads)
    torch::set_num_threads(settings.threads);
}

Json reconstruct_image(const ServedModel& model, const ImageSource& image,
                       const JobSettings& settings, ModelCache& cache, JobContext& context) {
  const auto start = std::chrono::steady_clock::now();
  return with_clean_errors(model, "reconstruct", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    context.progress(0.2, "reading the image");
    Json upload_info;
    if (image.test_index < 0) {
      const ImageInfo info = probe_image(image.upload, "upload");
      upload_info = {{"width", info.width}, {"height", info.height}, {"channels", info.channels}};
    } else {
      upload_info = {{"test_index", image.test_index}};
    }
    const auto test = image.test_index >= 0 ? open_test_split(loaded.config) : nullptr;
    const torch::Tensor x =
        load_image_source(image, loaded.config, test.get(), settings.max_side, "image");
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
    return {{"model", model.id},
            {"kind", model.kind},
            {"upload", upload_info},
            {"input", {{"width", x.size(2)}, {"height", x.size(1)}, {"channels", x.size(0)}}},
            {"view_scale", scale},
            {"images",
             {{"input", png_base64(x, scale)},
              {"reconstruction", png_base64(y, scale)},
              {"error", png_base64(heat, scale)}}},
            {"mse", mse},
            {"psnr", psnr},
            {"ssim", ssim},
            {"max_error", max_error},
            {"seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  });
}

}  // namespace lf::serve
