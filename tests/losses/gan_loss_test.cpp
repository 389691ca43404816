// GAN loss terms: hinge and vanilla values by hand, the disc_start gate, and the adaptive weight
// (value, clamp, detachment, and that the graph survives for the later backward).
#include "losses/gan_loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/model_test_util.h"

namespace lf {
namespace {

TEST(GANLoss, HingeAndVanillaValues) {
  const auto real = torch::tensor({2.0, 0.5}, torch::kDouble);
  const auto fake = torch::tensor({-2.0, 0.5}, torch::kDouble);
  // real: relu(1 - [2, .5]) = [0, .5] -> .25; fake: relu(1 + [-2, .5]) = [0, 1.5] -> .75
  EXPECT_DOUBLE_EQ(hinge_d_loss(real, fake).item<double>(), 0.5);
  const auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  const double vanilla =
      0.5 * ((softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-2.0) + softplus(0.5)) / 2);
  EXPECT_NEAR(vanilla_d_loss(real, fake).item<double>(), vanilla, 1e-12);
  EXPECT_DOUBLE_EQ(discriminator_loss("hinge", real, fake).item<double>(), 0.5);
  test::expect_error([&] { discriminator_loss("wgan", real, fake); },
                     "[discriminator_loss] expected kind \"hinge\" or \"vanilla\", got \"wgan\"");
}

TEST(GANLoss, AdoptWeightGatesBeforeThreshold) {
  EXPECT_EQ(adopt_weight(0.8, 4, 5), 0.0);
  EXPECT_EQ(adopt_weight(0.8, 5, 5), 0.8);
  EXPECT_EQ(adopt_weight(0.8, 0), 0.8);
  EXPECT_EQ(adopt_weight(0.8, 2, 3, 0.25), 0.25);
}

TEST(GANLoss, AdaptiveWeightByHand) {
  const auto w = torch::tensor({1.0, 2.0}, torch::kDouble).requires_grad_(true);
  const auto nll = (w * w).sum();  // grad 2w = [2, 4]: norm sqrt(20)
  const auto g = 3.0 * w[0];       // grad [3, 0]: norm 3
  const auto d = calculate_adaptive_weight(nll, g, w, 0.5);
  EXPECT_NEAR(d.item<double>(), 0.5 * std::sqrt(20.0) / (3.0 + 1e-4), 1e-12);
  EXPECT_FALSE(d.requires_grad());
  EXPECT_FALSE(w.grad().defined());  // autograd::grad does not accumulate into .grad

  // The graph was retained: the total loss still backpropagates, d acting as a constant.
  (nll + d * g).backward();
  const double dv = d.item<double>();
  EXPECT_NEAR(w.grad()[0].item<double>(), 2.0 + 3.0 * dv, 1e-12);
  EXPECT_NEAR(w.grad()[1].item<double>(), 4.0, 1e-12);
}

TEST(GANLoss, AdaptiveWeightIsClamped) {
  const auto w = torch::tensor({1.0, 2.0}, torch::kDouble).requires_grad_(true);
  const auto d = calculate_adaptive_weight((w * w).sum(), 1e-9 * w[0], w, 2.0);
  EXPECT_DOUBLE_EQ(d.item<double>(), 2.0 * 1e4);  // sqrt(20) / (1e-9 + 1e-4) > 1e4
}

TEST(GANLoss, AdaptiveWeightNeedsAGraph) {
  const auto w = torch::tensor({1.0, 2.0}).requires_grad_(true);
  torch::Tensor nll, g;
  {
    torch::NoGradGuard no_grad;
    nll = (w * w).sum();
    g = w[0] * 3;
  }
  test::expect_error([&] { calculate_adaptive_weight(nll, g, w, 1.0); },
                     "[calculate_adaptive_weight] nll_loss has no graph");
  const auto unrelated = torch::tensor({1.0}).requires_grad_(true);
  test::expect_error([&] { calculate_adaptive_weight((w * w).sum(), unrelated * 2, w, 1.0); },
                     "d g_loss / d last_layer failed");
  test::expect_error([&] { calculate_adaptive_weight((w * w).sum(), w[0], torch::Tensor(), 1.0); },
                     "last_layer must be");
}

}  // namespace
}  // namespace lf
