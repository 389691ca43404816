// The folded stride-2 transposed convolution (models/transposed_conv_fold.h) against LibTorch's
// conv_transpose2d in float64: forward and all three gradients, for the kernel/padding/output
// padding combinations of our decoders and a few more, odd sizes included; and the modules use it.
#include "models/transposed_conv_fold.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>
#include <vector>

#include "models/model_test_util.h"

namespace lf {
namespace {

namespace F = torch::nn::functional;
using test::max_rel;

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                        int64_t padding, int64_t output_padding) {
  return F::conv_transpose2d(
      x, w,
      F::ConvTranspose2dFuncOptions().bias(b).stride(2).padding(padding).output_padding(
          output_padding));
}

TEST(TransposedConvFold, EqualsConvTranspose2dForwardAndBackwardInFloat64) {
  torch::manual_seed(0);
  // (kernel, padding, output_padding): the AE/VQ-VAE decoders' 4/1/0 and the seed VAE's 3/1/1
  // first.
  for (const auto& [k, p, op] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{4, 1, 0},
                                                                                   {3, 1, 1},
                                                                                   {3, 1, 0},
                                                                                   {2, 0, 0},
                                                                                   {5, 2, 1},
                                                                                   {4, 0, 1},
                                                                                   {3, 0, 0},
                                                                                   {6, 2, 0}}) {
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{7, 7}, {5, 3}, {1, 2}}) {
      const auto x = torch::randn({2, 3, h, w}, torch::kFloat64).requires_grad_();
      const auto weight = torch::randn({3, 4, k, k}, torch::kFloat64).requires_grad_();
      const auto bias = torch::randn({4}, torch::kFloat64).requires_grad_();
      const auto x2 = x.detach().clone().requires_grad_();
      const auto weight2 = weight.detach().clone().requires_grad_();
      const auto bias2 = bias.detach().clone().requires_grad_();
      const auto want = reference(x2, weight2, bias2, p, op);
      const auto got = conv_transpose2x_folded(x, weight, bias, p, op);
      const std::string where = "k " + std::to_string(k) + " p " + std::to_string(p) + " op " +
                                std::to_string(op) + " " + std::to_string(h) + "x" +
                                std::to_string(w);
      ASSERT_EQ(got.sizes(), want.sizes()) << where;
      EXPECT_LT(max_rel(got, want), 1e-13) << where;
      const auto target = torch::randn_like(want);
      (got * target).sum().backward();
      (want * target).sum().backward();
      EXPECT_LT(max_rel(x.grad(), x2.grad()), 1e-12) << where;
      EXPECT_LT(max_rel(weight.grad(), weight2.grad()), 1e-12) << where;
      EXPECT_LT(max_rel(bias.grad(), bias2.grad()), 1e-12) << where;
    }
  }
}

TEST(TransposedConvFold, Float32StaysWithinRounding) {
  torch::manual_seed(1);
  const auto x = torch::randn({4, 64, 7, 7});
  const auto weight = torch::randn({64, 32, 4, 4}) / 16, bias = torch::randn({32});
  const auto want =
      reference(x.to(torch::kFloat64), weight.to(torch::kFloat64), bias.to(torch::kFloat64), 1, 0);
  EXPECT_LT(max_rel(conv_transpose2x_folded(x, weight, bias, 1, 0).to(torch::kFloat64), want),
            1e-5);
}

TEST(TransposedConvFold, ModulesTakeTheFoldedPathAndKeepTheirState) {
  torch::manual_seed(2);
  torch::nn::ConvTranspose2d ae_up(torch::nn::ConvTranspose2dOptions(8, 4, 4).stride(2).padding(1));
  torch::nn::ConvTranspose2d vae_up(
      torch::nn::ConvTranspose2dOptions(8, 4, 3).stride(2).padding(1).output_padding(1));
  torch::nn::ConvTranspose2d stride1(torch::nn::ConvTranspose2dOptions(8, 4, 3).padding(1));
  for (auto* m : {&ae_up, &vae_up, &stride1}) {
    (*m)->to(torch::kFloat64);
    const auto x = torch::randn({2, 8, 5, 6}, torch::kFloat64);
    torch::NoGradGuard no_grad;
    EXPECT_LT(max_rel(conv_transpose_forward(**m, x), (*m)->forward(x)), 1e-13);
    EXPECT_EQ((*m)->named_parameters().keys(), (std::vector<std::string>{"weight", "bias"}));
  }
}

TEST(TransposedConvFold, RejectsWhatItCannotFold) {
  test::expect_error(
      [] {
        conv_transpose2x_folded_weight(torch::zeros({2, 2, 3, 4}), 1);
      },
      "conv_transpose2x_folded");
  test::expect_error(
      [] {
        conv_transpose2x_folded_weight(torch::zeros({2, 2, 1, 1}), 0);
      },
      "conv_transpose2x_folded");
  test::expect_error(
      [] {
        conv_transpose2x_folded(torch::zeros({1, 3, 4, 4}), torch::zeros({2, 2, 4, 4}), {}, 1, 0);
      },
      "expected x [N, 2, H, W]");
  test::expect_error(
      [] {
        conv_transpose2x_folded(torch::zeros({1, 2, 4, 4}), torch::zeros({2, 2, 4, 4}), {}, 1, 2);
      },
      "output_padding 0 or 1");
  // Without bias: the same as LibTorch's.
  const auto x = torch::randn({1, 2, 3, 4}, torch::kFloat64);
  const auto w = torch::randn({2, 3, 4, 4}, torch::kFloat64);
  EXPECT_LT(max_rel(conv_transpose2x_folded(x, w, {}, 1, 0), reference(x, w, {}, 1, 0)), 1e-13);
}

}  // namespace
}  // namespace lf
