// Reduced-precision inference: bf16 autocast stays close to float32, the guard restores the
// previous state, and an output holding NaN or Inf is computed again in float32.
#include "models/reduced_precision.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "models/model_test_util.h"

namespace lf {
namespace {

TEST(ReducedPrecision, Bf16ConvolutionsStayCloseToFloat32AndTheGuardRestores) {
  if (!cpu_bf16_convolutions_supported()) {
    // Without AVX-512 (or under ONEDNN_MAX_CPU_ISA=AVX2) oneDNN has no bf16 convolution: asking
    // for bf16 is a clear error instead of oneDNN's own.
    test::expect_error([] { parse_precision("bf16", torch::kCPU); }, "bf16 on this CPU");
    EXPECT_EQ(parse_precision("fp32", torch::kCPU), torch::kFloat);
    return;
  }
  EXPECT_EQ(parse_precision("bf16", torch::kCPU), torch::kBFloat16);
  torch::manual_seed(0);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 8, 3).padding(1));
  const auto x = torch::randn({2, 8, 16, 16});
  torch::NoGradGuard no_grad;
  const auto reference = conv(x);
  torch::Tensor y;
  {
    AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    y = conv(x);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);  // the convolution really ran in bf16
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  const double rel = ((y.to(torch::kFloat) - reference).norm() / reference.norm()).item<double>();
  EXPECT_GT(rel, 1e-5);  // not float32's result
  EXPECT_LT(rel, 2e-2);  // bf16 has 8 significant bits
  EXPECT_EQ(conv(x).scalar_type(), torch::kFloat);
}

TEST(ReducedPrecision, ANonFiniteOutputIsComputedAgainInFloat32) {
  int calls = 0;
  // Overflows only under autocast, as fp16 does inside large decoders.
  const auto compute = [&] {
    ++calls;
    const bool reduced = at::autocast::is_cpu_enabled();
    auto out = torch::ones({2, 3});
    if (reduced) out[0][1] = std::numeric_limits<float>::infinity();
    return out;
  };
  const auto retried = run_with_float32_retry(compute, torch::kCPU, torch::kBFloat16);
  EXPECT_TRUE(retried.retried);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(torch::isfinite(retried.output).all().item<bool>());
  EXPECT_EQ(retried.output.scalar_type(), torch::kFloat);

  calls = 0;
  const auto plain = run_with_float32_retry(compute, torch::kCPU, torch::kFloat);
  EXPECT_FALSE(plain.retried);
  EXPECT_EQ(calls, 1);
}

TEST(ReducedPrecision, PrecisionNames) {
  EXPECT_EQ(parse_precision("fp32", torch::kCPU), torch::kFloat);
  EXPECT_EQ(parse_precision("bfloat16", torch::kCUDA), torch::kBFloat16);
  EXPECT_EQ(parse_precision("fp16", torch::kCUDA), torch::kHalf);
  test::expect_error([] { parse_precision("fp16", torch::kCPU); }, "fp16 needs a CUDA device");
  test::expect_error([] { parse_precision("int8", torch::kCPU); },
                     "'int8': expected fp32, bf16 or fp16");
}

}  // namespace
}  // namespace lf
