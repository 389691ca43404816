// LPIPS: parity with taming's module (formula weights, scripts/make_loss_fixtures.py), the three
// key layouts, metric properties, frozen weights with gradients to the inputs, and load errors.
#include "losses/lpips.h"

#include <gtest/gtest.h>

#include "losses/loss_test_util.h"
#include "models/model_test_util.h"

namespace lf {
namespace {

using test::expect_close;
using test::expect_error;

std::string temp_file(const std::string& name) {
  return ::testing::TempDir() + "/" + name + ".safetensors";
}

TEST(LPIPS, MatchesTamingOutputAndInputGradient) {
  for (const auto& precision : test::parity_precisions()) {
    SCOPED_TRACE(precision.name);
    const auto fx = test::in_precision(test::load_loss_fixture("lpips"), precision.dtype);
    LPIPS lpips(test::lpips_formula_file());
    lpips->to(precision.dtype);
    const auto x = fx.at("x").clone().requires_grad_(true);
    const auto d = lpips(x, fx.at("y"));  // [N]
    EXPECT_EQ(d.scalar_type(), precision.dtype);
    expect_close(d, fx.at("out"), precision.forward, "distance");
    d.sum().backward();
    ASSERT_TRUE(x.grad().defined());
    test::expect_close_l2(x.grad(), fx.at("grad_x"), precision.gradient, "d distance / d x");
  }
}

TEST(LPIPS, ReadsPrefixedAndTorchvisionLayouts) {
  const auto fx = test::in_precision(test::load_loss_fixture("lpips"), torch::kFloat);
  const auto weights = test::lpips_formula_weights();
  LPIPS plain(test::lpips_formula_file());
  torch::NoGradGuard no_grad;
  const auto expected = plain(fx.at("x"), fx.at("y"));

  // A taming VQGAN checkpoint: everything under "loss.perceptual_loss." next to the model.
  TensorMap checkpoint = {{"encoder.conv_in.weight", torch::ones({4, 3, 3, 3})},
                          {"loss.discriminator.main.0.weight", torch::ones({2})}};
  for (const auto& [key, value] : weights) checkpoint["loss.perceptual_loss." + key] = value;
  checkpoint["loss.perceptual_loss.scaling_layer.shift"] =
      torch::tensor({-.030f, -.088f, -.188f}).view({1, 3, 1, 1});
  checkpoint["loss.perceptual_loss.scaling_layer.scale"] =
      torch::tensor({.458f, .448f, .450f}).view({1, 3, 1, 1});
  save_safetensors(temp_file("lpips_prefixed"), checkpoint);
  EXPECT_TRUE(torch::equal(LPIPS(temp_file("lpips_prefixed"))(fx.at("x"), fx.at("y")), expected));

  // torchvision's vgg16 features.<i> plus the LPIPS heads.
  TensorMap torchvision = {{"classifier.0.weight", torch::zeros({2, 2})}};
  for (const auto& [key, value] : weights) {
    if (key.rfind("net.", 0) == 0)
      torchvision["features" + key.substr(key.find('.', 4))] = value;
    else
      torchvision[key] = value;
  }
  save_safetensors(temp_file("lpips_torchvision"), torchvision);
  EXPECT_TRUE(
      torch::equal(LPIPS(temp_file("lpips_torchvision"))(fx.at("x"), fx.at("y")), expected));
}

TEST(LPIPS, IsASymmetricDistanceWithFrozenWeights) {
  LPIPS lpips(test::lpips_formula_file());
  const auto x = (torch::rand({3, 3, 32, 48}) * 2 - 1).requires_grad_(true);
  const auto y = torch::rand({3, 3, 32, 48}) * 2 - 1;
  const auto d_xy = lpips(x, y), d_yx = lpips(y, x), d_xx = lpips(x, x);
  ASSERT_EQ(d_xy.sizes(), torch::IntArrayRef({3}));
  EXPECT_TRUE((d_xy > 0).all().item<bool>());
  EXPECT_TRUE(torch::allclose(d_xy, d_yx, 1e-5, 1e-7));
  EXPECT_LE(d_xx.abs().max().item<double>(), 1e-7);
  d_xy.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  for (const auto& p : lpips->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(LPIPS, NamesFileAndKeyOnMissingOrMisshapenWeights) {
  auto weights = test::lpips_formula_weights();
  weights.erase("net.slice3.12.weight");
  save_safetensors(temp_file("lpips_missing"), weights);
  expect_error([&] { LPIPS lpips(temp_file("lpips_missing")); },
               temp_file("lpips_missing") + ": missing key 'net.slice3.12.weight'");

  weights = test::lpips_formula_weights();
  weights["lin2.model.1.weight"] = torch::zeros({1, 128, 1, 1});
  TensorMap prefixed;
  for (const auto& [key, value] : weights) prefixed["loss.perceptual_loss." + key] = value;
  save_safetensors(temp_file("lpips_shape"), prefixed);
  expect_error([&] { LPIPS lpips(temp_file("lpips_shape")); },
               "'loss.perceptual_loss.lin2.model.1.weight' has shape [1, 128, 1, 1], expected "
               "[1, 256, 1, 1]");

  save_safetensors(temp_file("lpips_none"), {{"encoder.conv_in.weight", torch::ones({1})}});
  expect_error([&] { LPIPS lpips(temp_file("lpips_none")); }, "no LPIPS weights");
}

TEST(LPIPS, RejectsBadInputs) {
  LPIPS lpips;
  expect_error(
      [&] {
        lpips(torch::zeros({1, 1, 32, 32}), torch::zeros({1, 1, 32, 32}));
      },
      "[lpips] expected two [N, 3, H, W]");
  expect_error(
      [&] {
        lpips(torch::zeros({1, 3, 32, 32}), torch::zeros({2, 3, 32, 32}));
      },
      "got [1, 3, 32, 32] and [2, 3, 32, 32]");
}

}  // namespace
}  // namespace lf
