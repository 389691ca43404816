// The CPU conv path: Winograd (where oneDNN has it) within 1e-4 relative of LibTorch's direct
// convolution, per layer and through a whole decoder; where it must not run (training, small
// layers, --conv direct, CPUs without avx512_core: run again under ONEDNN_MAX_CPU_ISA=AVX2 by
// tests/CMakeLists.txt).
#include "models/conv_algorithm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "models/ldm_coder.h"
#include "models/model_test_util.h"
#include "models/winograd_conv.h"

namespace lf {
namespace {

using test::max_rel;

// Restores the process-wide choice at the end of a test.
struct AlgorithmGuard {
  ConvAlgorithm saved = conv_algorithm();
  ~AlgorithmGuard() { set_conv_algorithm(saved); }
};

bool isa_capped_below_avx512() {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  return cap && std::string(cap).rfind("AVX512", 0) != 0 && std::string(cap) != "ALL";
}

TEST(ConvAlgorithm, ParsesTheSwitch) {
  EXPECT_EQ(parse_conv_algorithm("auto"), ConvAlgorithm::kAuto);
  EXPECT_EQ(parse_conv_algorithm("direct"), ConvAlgorithm::kDirect);
  test::expect_error([] { parse_conv_algorithm("winograd"); }, "auto or direct");
}

TEST(ConvAlgorithm, OffWithoutAvx512) {
  if (!isa_capped_below_avx512()) GTEST_SKIP() << "runs under ONEDNN_MAX_CPU_ISA=AVX2";
  EXPECT_FALSE(winograd::available());
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(64, 64, 3).padding(1));
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(uses_winograd(*conv, torch::zeros({1, 64, 64, 64})));
  EXPECT_NE(conv_algorithm_summary().find("Winograd off"), std::string::npos)
      << conv_algorithm_summary();
}

TEST(ConvAlgorithm, WinogradMatchesDirectPerLayer) {
  if (!winograd::available()) GTEST_SKIP() << winograd::describe();
  AlgorithmGuard guard;
  torch::manual_seed(0);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(64, 96, 3).padding(1));
  const auto x = torch::randn({2, 64, 64, 72});
  torch::NoGradGuard no_grad;
  set_conv_algorithm(ConvAlgorithm::kAuto);
  ASSERT_TRUE(uses_winograd(*conv, x)) << conv_algorithm_summary();
  const auto fast = conv_forward(*conv, x);
  const auto direct = conv->forward(x);
  ASSERT_EQ(fast.sizes(), direct.sizes());
  EXPECT_LT(max_rel(fast, direct), 1e-4);
  // The cached transformed weight follows an in-place change of the weight.
  conv->weight.mul_(2);
  EXPECT_LT(max_rel(conv_forward(*conv, x), conv->forward(x)), 1e-4);
  set_conv_algorithm(ConvAlgorithm::kDirect);
  EXPECT_FALSE(uses_winograd(*conv, x));
  EXPECT_TRUE(conv_forward(*conv, x).equal(conv->forward(x)));
}

TEST(ConvAlgorithm, DirectWhereWinogradDoesNotPay) {
  AlgorithmGuard guard;
  set_conv_algorithm(ConvAlgorithm::kAuto);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(64, 64, 3).padding(1));
  torch::nn::Conv2d strided(torch::nn::Conv2dOptions(64, 64, 3).stride(2).padding(1));
  torch::nn::Conv2d narrow(torch::nn::Conv2dOptions(3, 64, 3).padding(1));
  const auto big = torch::zeros({1, 64, 64, 64});
  EXPECT_FALSE(uses_winograd(*conv, big));  // gradients recorded: training keeps LibTorch's
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(uses_winograd(*conv, torch::zeros({1, 64, 16, 16})));  // small layer
  EXPECT_FALSE(uses_winograd(*strided, big));
  EXPECT_FALSE(uses_winograd(*narrow, torch::zeros({1, 3, 64, 64})));
  EXPECT_FALSE(uses_winograd(*conv, big.to(torch::kFloat64)));
}

TEST(ConvAlgorithm, DecoderWithEveryFastPathMatchesDirect) {
  if (!winograd::available()) GTEST_SKIP() << winograd::describe();
  AlgorithmGuard guard;
  torch::manual_seed(1);
  LdmDecoder decoder(LdmCoderOptions().ch(64).ch_mult({1, 1}).num_res_blocks(1).z_channels(4));
  decoder->eval();
  const auto z = torch::randn({1, 4, 64, 64});
  torch::NoGradGuard no_grad;
  set_conv_algorithm(ConvAlgorithm::kDirect);
  const auto direct = decoder->forward(z);
  set_conv_algorithm(ConvAlgorithm::kAuto);
  const auto fast = decoder->forward(z);  // [1, 3, 128, 128], Winograd in every resnet conv
  EXPECT_LT(max_rel(fast, direct), 1e-4);
}

}  // namespace
}  // namespace lf
