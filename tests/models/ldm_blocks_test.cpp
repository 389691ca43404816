// The ldm blocks' fast paths against their plain definitions in float64: the folded upsample
// (models/upsample_fold.h: four 2x2 phase convs) against nearest x2 + 3x3 conv, forward and
// backward; the in-place resnet block against the reference formula.
#include "models/ldm_blocks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model_test_util.h"
#include "models/upsample_fold.h"

namespace lf {
namespace {

namespace F = torch::nn::functional;

// The reference: nearest x2, then the module's own 3x3 conv.
torch::Tensor unfolded(LdmUpsampleImpl& up, const torch::Tensor& x) {
  const auto big = F::interpolate(x, F::InterpolateFuncOptions()
                                         .scale_factor(std::vector<double>{2.0, 2.0})
                                         .mode(torch::kNearest));
  return up.conv->forward(big);
}

using test::max_rel;

TEST(LdmUpsample, FoldedEqualsUpsampleThenConvInFloat64) {
  torch::manual_seed(0);
  LdmUpsample up(8, true);
  up->to(torch::kFloat64);
  for (const auto& size : std::vector<std::pair<int64_t, int64_t>>{{5, 7}, {1, 1}, {6, 2}}) {
    const auto x = torch::randn({2, 8, size.first, size.second}, torch::kFloat64);
    torch::NoGradGuard no_grad;
    const auto y = up->forward(x);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 8, 2 * size.first, 2 * size.second}));
    EXPECT_LT(max_rel(y, unfolded(*up, x)), 1e-13) << size.first << "x" << size.second;
  }
}

TEST(LdmUpsample, FoldedGradientsReachTheCheckpointWeights) {
  torch::manual_seed(1);
  LdmUpsample folded(4, true), plain(4, true);
  folded->to(torch::kFloat64);
  plain->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    plain->conv->weight.copy_(folded->conv->weight);
    plain->conv->bias.copy_(folded->conv->bias);
  }
  const auto x = torch::randn({1, 4, 5, 6}, torch::kFloat64).requires_grad_();
  const auto x2 = x.detach().clone().requires_grad_();
  const auto target = torch::randn({1, 4, 10, 12}, torch::kFloat64);
  (folded->forward(x) * target).sum().backward();
  (unfolded(*plain, x2) * target).sum().backward();
  EXPECT_LT(max_rel(folded->conv->weight.grad(), plain->conv->weight.grad()), 1e-12);
  EXPECT_LT(max_rel(folded->conv->bias.grad(), plain->conv->bias.grad()), 1e-12);
  EXPECT_LT(max_rel(x.grad(), x2.grad()), 1e-12);
  // Registered names are the checkpoint's: only the 3x3 conv is state.
  const auto names = folded->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"conv.weight", "conv.bias"}));
}

TEST(LdmUpsample, FoldedPathRejectsMismatchedInput) {
  test::expect_error(
      [] {
        upsample_conv_folded_weight(torch::zeros({2, 2, 5, 5}));
      },
      "upsample_conv_folded_weight");
  test::expect_error(
      [] {
        upsample_conv_folded(torch::zeros({1, 3, 4, 4}), torch::zeros({2, 2, 3, 3}), {});
      },
      "upsample_conv_folded");
  // Without bias too (the module always has one).
  const auto x = torch::randn({1, 2, 3, 4}, torch::kFloat64);
  const auto w = torch::randn({3, 2, 3, 3}, torch::kFloat64);
  const auto up =
      torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                .scale_factor(std::vector<double>{2.0, 2.0})
                                                .mode(torch::kNearest));
  EXPECT_LT(max_rel(upsample_conv_folded(x, w, {}), torch::conv2d(up, w, {}, 1, 1)), 1e-13);
}

TEST(LdmResnetBlock, InPlaceInferenceMatchesTheReferenceFormula) {
  torch::manual_seed(3);
  LdmResnetBlock block(32, 64, 0.0);
  block->to(torch::kFloat64);
  block->eval();
  const auto x = torch::randn({1, 32, 6, 5}, torch::kFloat64);
  const auto swish = [](const torch::Tensor& t) { return t * torch::sigmoid(t); };
  torch::NoGradGuard no_grad;
  auto h = block->conv1(swish(block->norm1(x)));
  h = block->conv2(swish(block->norm2(h)));
  const auto want = block->nin_shortcut(x) + h;
  EXPECT_LT(max_rel(block->forward(x), want), 1e-13);
}

}  // namespace
}  // namespace lf
