// Reconstruction metrics on images in [-1, 1]: MSE, PSNR and SSIM (computed on the [0, 1] scale,
// as image papers report them), per image so that dataset averages are means over images.
#pragma once

#include <torch/torch.h>

namespace lf {

// a, b: [N, C, H, W] in [-1, 1] -> [N] mean squared error on the [0, 1] scale
torch::Tensor mse_per_image(const torch::Tensor& a, const torch::Tensor& b);
// [N] PSNR in dB with peak 1 on the [0, 1] scale (capped at 100 dB for identical images)
torch::Tensor psnr_per_image(const torch::Tensor& a, const torch::Tensor& b);
// [N] SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid region,
// averaged over channels and positions (the skimage / pytorch-msssim convention).
torch::Tensor ssim_per_image(const torch::Tensor& a, const torch::Tensor& b);

// Running means over a dataset.
struct ImageMetricsAccumulator {
  void add(const torch::Tensor& originals, const torch::Tensor& reconstructions);
  double mse() const { return count ? sum_mse / count : 0; }
  double psnr() const { return count ? sum_psnr / count : 0; }
  double ssim() const { return count ? sum_ssim / count : 0; }
  double sum_mse = 0, sum_psnr = 0, sum_ssim = 0;
  int64_t count = 0;
};

}  // namespace lf
