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
  {
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(uses_winograd(*conv, torch::zeros({32, 64, 16, 16}, torch::requires_grad())));
  }
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
  // Training counts the batch's pixels: N*H*W = 1024 is too few, and so are 16 channels.
  EXPECT_FALSE(uses_winograd(*conv, torch::zeros({4, 64, 16, 16}, torch::requires_grad())));
  torch::nn::Conv2d thin(torch::nn::Conv2dOptions(16, 64, 3).padding(1));
  EXPECT_FALSE(uses_winograd(*thin, torch::zeros({32, 16, 32, 32}, torch::requires_grad())));
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

// Forward and the three gradients of the training path against a float64 reference, beside
// LibTorch's own float32 convolution: Winograd's error must stay at float32's scale.
TEST(ConvAlgorithm, WinogradTrainingGradientsMatchFloat64) {
  if (!winograd::available()) GTEST_SKIP() << winograd::describe();
  torch::manual_seed(2);
  struct Case {
    int64_t n, c, o, h, w;
    bool bias, input_grad;
  };
  for (const Case k : {Case{4, 32, 48, 13, 9, true, true}, Case{2, 64, 32, 8, 8, false, true},
                       Case{3, 16, 16, 7, 11, true, false}}) {
    SCOPED_TRACE(::testing::Message()
                 << k.n << "x" << k.c << "->" << k.o << " at " << k.h << "x" << k.w);
    ASSERT_TRUE(winograd::trainable(k.n, k.c, k.o, k.h, k.w));
    const auto x64 = torch::randn({k.n, k.c, k.h, k.w}, torch::kFloat64);
    const auto w64 = torch::randn({k.o, k.c, 3, 3}, torch::kFloat64) / std::sqrt(9.0 * k.c);
    const auto b64 = torch::randn({k.o}, torch::kFloat64);
    const auto g64 = torch::randn({k.n, k.o, k.h, k.w}, torch::kFloat64);
    // leaves in the given dtype; returns y, dx (or undefined), dw, db (or undefined)
    const auto run = [&](torch::ScalarType type, bool winograd) {
      auto x = x64.to(type).clone().requires_grad_(k.input_grad);
      auto w = w64.to(type).clone().requires_grad_(true);
      auto b = k.bias ? b64.to(type).clone().requires_grad_(true) : torch::Tensor();
      auto y = winograd ? winograd::conv3x3_trainable(x, w, b)
                        : torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
      y.backward(g64.to(type));
      return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad(),
                                        k.bias ? b.grad() : torch::Tensor()};
    };
    const auto exact = run(torch::kFloat64, false);
    const auto fast = run(torch::kFloat32, true);
    const auto direct = run(torch::kFloat32, false);
    const char* names[] = {"y", "dx", "dw", "db"};
    for (size_t i = 0; i < exact.size(); ++i) {
      SCOPED_TRACE(names[i]);
      ASSERT_EQ(fast[i].defined(), exact[i].defined());
      if (!exact[i].defined()) continue;
      const double err = max_rel(fast[i].to(torch::kFloat64), exact[i]);
      EXPECT_LT(err, 2e-5);
      // within a few times the direct float32 convolution's own rounding
      EXPECT_LT(err, 20 * max_rel(direct[i].to(torch::kFloat64), exact[i]) + 1e-6);
    }
  }
}

// A decoder's training step (loss, every parameter's gradient) with Winograd where it applies
// against the same step with LibTorch's convolution.
TEST(ConvAlgorithm, DecoderTrainingStepMatchesDirect) {
  if (!winograd::available()) GTEST_SKIP() << winograd::describe();
  AlgorithmGuard guard;
  torch::manual_seed(3);
  LdmDecoder decoder(LdmCoderOptions().ch(32).ch_mult({1, 2}).num_res_blocks(1).z_channels(8));
  const auto z = torch::randn({32, 8, 8, 8});
  const auto target = torch::randn({32, 3, 16, 16});
  const auto step = [&](ConvAlgorithm algorithm) {
    set_conv_algorithm(algorithm);
    decoder->zero_grad();
    const auto loss = (decoder->forward(z) - target).abs().mean();
    loss.backward();
    std::vector<torch::Tensor> out{loss.detach().reshape({1})};
    for (const auto& p : decoder->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  set_conv_algorithm(ConvAlgorithm::kAuto);
  {
    const auto probe = torch::zeros({32, 64, 8, 8}, torch::requires_grad());
    ASSERT_TRUE(uses_winograd(*decoder->mid->block_1->conv1, probe));  // 64 ch, N*H*W 2048
  }
  const auto fast = step(ConvAlgorithm::kAuto);
  const auto direct = step(ConvAlgorithm::kDirect);
  ASSERT_EQ(fast.size(), direct.size());
  const auto named = decoder->named_parameters();
  double scale = 0;  // the largest gradient of any parameter
  for (size_t i = 1; i < direct.size(); ++i)
    scale = std::max(scale, direct[i].abs().max().item<double>());
  for (size_t i = 0; i < fast.size(); ++i) {
    // Relative to the parameter's own largest gradient, floored at 1e-3 of the largest overall:
    // the biases before a GroupNorm (and attention's k bias) have gradients that are exactly 0
    // in exact arithmetic, rounding noise of 1e-10 here in both.
    const double own = direct[i].abs().max().item<double>();
    const double denominator = i == 0 ? own : std::max(own, 1e-3 * scale);
    EXPECT_LT((fast[i] - direct[i]).abs().max().item<double>() / denominator, 1e-4)
        << (i == 0 ? std::string("loss") : named[i - 1].key());
  }
}

}  // namespace
}  // namespace lf
