// MSE / PSNR / SSIM.
#include "eval/image_metrics.h"

#include "core/error.h"

namespace lf {

namespace {
void check_pair(const torch::Tensor& a, const torch::Tensor& b, const char* where) {
  if (a.dim() != 4 || a.sizes() != b.sizes())
    fail(where, "expected two [N, C, H, W] tensors of one shape, got {} and {}",
         shape_str(a.sizes()), shape_str(b.sizes()));
}

torch::Tensor gaussian_window(int64_t size, double sigma, const torch::TensorOptions& options) {
  auto x = torch::arange(size, options) - (size - 1) / 2.0;
  auto g = torch::exp(-(x * x) / (2 * sigma * sigma));
  g = g / g.sum();
  return torch::outer(g, g);  // [size, size]
}
}  // namespace

torch::Tensor mse_per_image(const torch::Tensor& a, const torch::Tensor& b) {
  check_pair(a, b, "metrics::mse");
  const auto d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)) / 2.0;  // [-1,1] -> [0,1] scale
  return d.pow(2).flatten(1).mean(1);
}

torch::Tensor psnr_per_image(const torch::Tensor& a, const torch::Tensor& b) {
  const auto mse = mse_per_image(a, b);
  return (10.0 * torch::log10(1.0 / mse.clamp_min(1e-10))).clamp_max(100.0);
}

torch::Tensor ssim_per_image(const torch::Tensor& a, const torch::Tensor& b) {
  check_pair(a, b, "metrics::ssim");
  constexpr int64_t kWindow = 11;
  if (a.size(2) < kWindow || a.size(3) < kWindow)
    fail("metrics::ssim", "images of {}x{}: expected at least {}x{}", a.size(2), a.size(3), kWindow,
         kWindow);
  const auto x = ((a.to(torch::kFloat64) + 1) / 2).flatten(0, 1).unsqueeze(1);  // [N*C, 1, H, W]
  const auto y = ((b.to(torch::kFloat64) + 1) / 2).flatten(0, 1).unsqueeze(1);
  const auto w = gaussian_window(kWindow, 1.5, x.options()).view({1, 1, kWindow, kWindow});
  auto filter = [&](const torch::Tensor& t) { return torch::conv2d(t, w); };
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const auto mu_x = filter(x), mu_y = filter(y);
  const auto sigma_xx = filter(x * x) - mu_x * mu_x;
  const auto sigma_yy = filter(y * y) - mu_y * mu_y;
  const auto sigma_xy = filter(x * y) - mu_x * mu_y;
  const auto map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) /
                   ((mu_x * mu_x + mu_y * mu_y + c1) * (sigma_xx + sigma_yy + c2));
  return map.flatten(1).mean(1).view({a.size(0), a.size(1)}).mean(1);
}

void ImageMetricsAccumulator::add(const torch::Tensor& originals,
                                  const torch::Tensor& reconstructions) {
  torch::NoGradGuard no_grad;
  const auto a = originals.detach().to(torch::kCPU), b = reconstructions.detach().to(torch::kCPU);
  sum_mse += mse_per_image(a, b).sum().item<double>();
  sum_psnr += psnr_per_image(a, b).sum().item<double>();
  sum_ssim += ssim_per_image(a, b).sum().item<double>();
  count += a.size(0);
}

}  // namespace lf
