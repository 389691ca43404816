// MSE / PSNR / SSIM against closed forms and known values.
#include "eval/image_metrics.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lf {
namespace {

TEST(ImageMetrics, MseAndPsnrOnTheUnitScale) {
  const auto a = torch::full({2, 1, 16, 16}, -1.0);
  const auto b = torch::full({2, 1, 16, 16}, 0.0);  // 0.5 apart on the [0, 1] scale
  EXPECT_NEAR(mse_per_image(a, b)[0].item<double>(), 0.25, 1e-12);
  EXPECT_NEAR(psnr_per_image(a, b)[1].item<double>(), 10 * std::log10(4.0), 1e-9);
  EXPECT_NEAR(psnr_per_image(a, a)[0].item<double>(), 100.0, 1e-9);
}

TEST(ImageMetrics, SsimIsOneForIdenticalAndDropsWithNoise) {
  torch::manual_seed(0);
  const auto a = torch::rand({3, 3, 32, 32}) * 2 - 1;
  EXPECT_NEAR(ssim_per_image(a, a).min().item<double>(), 1.0, 1e-9);
  const auto noisy = (a + 0.3 * torch::randn_like(a)).clamp(-1, 1);
  const double s = ssim_per_image(a, noisy).mean().item<double>();
  EXPECT_LT(s, 0.9);
  EXPECT_GT(s, 0.0);
  // A constant shift of the mean keeps structure: SSIM stays high.
  const auto shifted = (a * 0.5 + 0.1);
  EXPECT_GT(ssim_per_image(a * 0.5, shifted).mean().item<double>(), 0.9);
}

TEST(ImageMetrics, AccumulatorAveragesOverImages) {
  ImageMetricsAccumulator acc;
  acc.add(torch::zeros({1, 1, 16, 16}), torch::zeros({1, 1, 16, 16}));
  acc.add(torch::full({3, 1, 16, 16}, -1.0), torch::full({3, 1, 16, 16}, 1.0));
  EXPECT_EQ(acc.count, 4);
  EXPECT_NEAR(acc.mse(), 0.75, 1e-12);
  EXPECT_NEAR(acc.psnr(), 25.0, 1e-9);  // (100 + 3 * 0) / 4
}

TEST(ImageMetrics, ShapeMismatchIsAClearError) {
  EXPECT_THROW(mse_per_image(torch::zeros({1, 1, 16, 16}), torch::zeros({1, 1, 16, 15})), Error);
  EXPECT_THROW(ssim_per_image(torch::zeros({1, 1, 8, 8}), torch::zeros({1, 1, 8, 8})), Error);
}

}  // namespace
}  // namespace lf
