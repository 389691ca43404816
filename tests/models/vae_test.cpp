// VAE: KL against the closed form, the seed's key names, shapes, overfitting, gradients, sampling,
// interpolation, save/load and options JSON.
#include "models/vae.h"

#include <gtest/gtest.h>

#include "models/model_test_util.h"

#include <cmath>
#include <filesystem>
#include <set>

namespace lf {
namespace {

using test::expect_error;
using test::images;
using test::overfit_ratio;
using test::smooth_images;

VAEOptions tiny_conv() {
  return VAEOptions().in_channels(1).image_size(16).hidden({8, 16}).latent_dim(8).kl_weight(0.0025);
}

TEST(VAE, KlDivergenceMatchesTheClosedForm) {
  const std::vector<std::vector<double>> m = {{0.5, -1.0, 0.0}, {2.0, 0.1, -0.3}};
  const std::vector<std::vector<double>> lv = {{0.0, -0.5, 1.0}, {0.2, -2.0, 0.3}};
  double expected = 0;
  for (size_t i = 0; i < 2; ++i)
    for (size_t j = 0; j < 3; ++j)
      expected += -0.5 * (1 + lv[i][j] - m[i][j] * m[i][j] - std::exp(lv[i][j])) / 2;  // batch mean
  const auto mean = torch::tensor({0.5, -1.0, 0.0, 2.0, 0.1, -0.3}, torch::kDouble).view({2, 3});
  const auto logvar = torch::tensor({0.0, -0.5, 1.0, 0.2, -2.0, 0.3}, torch::kDouble).view({2, 3});
  EXPECT_NEAR(kl_divergence(mean, logvar).item<double>(), expected, 1e-12);
  // The prior itself has KL 0; a latent map sums over every latent dim.
  EXPECT_EQ(kl_divergence(torch::zeros({4, 5}), torch::zeros({4, 5})).item<double>(), 0.0);
  EXPECT_NEAR(kl_divergence(mean.view({2, 3, 1, 1}), logvar.view({2, 3, 1, 1})).item<double>(),
              expected, 1e-12);
  expect_error(
      [] {
        kl_divergence(torch::zeros({2, 3}), torch::zeros({2, 4}));
      },
      "[vae::kl_divergence]");
}

TEST(VAE, Face64HasTheSeedsKeysAndShapes) {
  VAE model(vae_preset("face64"));
  std::map<std::string, std::vector<int64_t>> expected;
  const std::vector<int64_t> h = {16, 32, 64, 128, 256};
  const auto add_bn = [&](const std::string& prefix, int64_t c) {
    for (const char* name : {"weight", "bias", "running_mean", "running_var"})
      expected[prefix + name] = {c};
    expected[prefix + "num_batches_tracked"] = {};
  };
  int64_t prev = 3;
  for (size_t i = 0; i < h.size(); ++i) {
    const auto p = "encoder." + std::to_string(i) + ".";
    expected[p + "0.weight"] = {h[i], prev, 3, 3};
    expected[p + "0.bias"] = {h[i]};
    add_bn(p + "1.", h[i]);
    prev = h[i];
  }
  expected["mean_linear.weight"] = {128, 256 * 2 * 2};
  expected["mean_linear.bias"] = {128};
  expected["var_linear.weight"] = {128, 256 * 2 * 2};
  expected["var_linear.bias"] = {128};
  expected["decoder_projection.weight"] = {256 * 2 * 2, 128};
  expected["decoder_projection.bias"] = {256 * 2 * 2};
  for (int64_t i = 4, j = 0; i >= 0; --i, ++j) {
    const auto p = "decoder." + std::to_string(j) + ".";
    const int64_t out = h[std::max<int64_t>(i - 1, 0)];
    expected[p + "0.weight"] = {h[i], out, 3, 3};  // ConvTranspose2d: [in, out, k, k]
    expected[p + "0.bias"] = {out};
    add_bn(p + "1.", out);
  }
  expected["decoder.4.3.weight"] = {3, 16, 3, 3};
  expected["decoder.4.3.bias"] = {3};

  std::map<std::string, std::vector<int64_t>> actual;
  for (const auto& item : model->named_parameters())
    actual[item.key()] = item.value().sizes().vec();
  for (const auto& item : model->named_buffers()) actual[item.key()] = item.value().sizes().vec();
  EXPECT_EQ(actual, expected);
}

TEST(VAE, ShapesForEveryPresetAndOtherSizes) {
  for (const auto& [preset, c, s, d] :
       {std::tuple{"face64", 3, 64, 128}, std::tuple{"fashion", 1, 28, 16}}) {
    SCOPED_TRACE(preset);
    VAE model(vae_preset(preset));
    const auto x = images(2, c, s, s);
    const auto code = model->encode(x);
    EXPECT_EQ(code.at("mean").sizes(), (std::vector<int64_t>{2, d}));
    EXPECT_EQ(code.at("logvar").sizes(), (std::vector<int64_t>{2, d}));
    EXPECT_TRUE(torch::equal(code.at("latents"), code.at("mean")));
    EXPECT_EQ(model->decode({{"mean", code.at("mean")}}).sizes(), x.sizes());
    EXPECT_EQ(model->train_step(x).reconstruction.sizes(), x.sizes());
    EXPECT_EQ(model->sample(3).sizes(), (std::vector<int64_t>{3, c, s, s}));
    expect_error([&] { model->encode(images(2, c, s + model->factor(), s)); }, "takes");
  }
  // The conv variant at a non-default size: 32 = 4 * 8 for hidden {32, 64}.
  VAE fashion32(vae_preset("fashion").image_size(32));
  EXPECT_EQ(fashion32->reconstruct(images(2, 1, 32, 32)).sizes(),
            (std::vector<int64_t>{2, 1, 32, 32}));
  expect_error([] { VAE(vae_preset("fashion").image_size(30)); }, "image_size");

  // The spatial variant takes any size divisible by its factor.
  VAE spatial(vae_preset("fashion").variant("spatial"));
  for (auto [hh, ww] : {std::pair{28, 28}, std::pair{20, 36}}) {
    const auto code = spatial->encode(images(2, 1, hh, ww));
    EXPECT_EQ(code.at("mean").sizes(), (std::vector<int64_t>{2, 4, hh / 4, ww / 4}));
    EXPECT_EQ(spatial->decode(code).sizes(), (std::vector<int64_t>{2, 1, hh, ww}));
  }
  EXPECT_EQ(spatial->sample(2).sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
}

TEST(VAE, TrainStepCombinesReconstructionAndKl) {
  VAE model(tiny_conv());
  const auto x = images(4, 1, 16, 16);
  const auto out = model->train_step(x);
  const auto& logs = out.logs;
  EXPECT_NEAR(logs.at("loss"), logs.at("loss_rec") + 0.0025 * logs.at("loss_kl"), 1e-5);
  EXPECT_NEAR(out.loss.item<double>(), logs.at("loss"), 1e-6);
  EXPECT_NEAR(logs.at("loss_rec"), torch::mse_loss(out.reconstruction, x).item<double>(), 1e-6);
  EXPECT_GE(logs.at("loss_kl"), 0);
}

TEST(VAE, OverfitsATinyBatch) {
  torch::manual_seed(0);
  VAE conv(tiny_conv());
  EXPECT_LT(overfit_ratio(conv, smooth_images(4, 1, 16, 16), 1e-2, 30, "loss"), 0.5);
  // The spatial KL sums over 64 latent dims: a smaller kl_weight lets 40 steps show learning.
  torch::manual_seed(0);
  VAE spatial(tiny_conv().variant("spatial").kl_weight(1e-4));
  EXPECT_LT(overfit_ratio(spatial, smooth_images(4, 1, 16, 16), 1e-2, 40, "loss"), 0.7);
}

TEST(VAE, GradientsReachTheFirstConv) {
  for (const auto& [variant, key] :
       {std::pair{"conv", "encoder.0.0.weight"}, std::pair{"spatial", "encoder.down.0.weight"}}) {
    SCOPED_TRACE(variant);
    VAE model(tiny_conv().variant(variant));
    model->train_step(images(2, 1, 16, 16)).loss.backward();
    const auto grad = model->named_parameters()[key].grad();
    ASSERT_TRUE(grad.defined());
    EXPECT_GT(grad.abs().sum().item<double>(), 0);
  }
}

TEST(VAE, InterpolationRunsFromOneImageToTheOther) {
  VAE model(tiny_conv());
  model->eval();
  torch::NoGradGuard no_grad;
  const auto a = images(1, 1, 16, 16), b = images(1, 1, 16, 16);
  const auto path = model->interpolate(a, b, 5);
  EXPECT_EQ(path.sizes(), (std::vector<int64_t>{5, 1, 16, 16}));
  EXPECT_TRUE(torch::allclose(path[0], model->reconstruct(a)[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(path[4], model->reconstruct(b)[0], 1e-5, 1e-5));
  expect_error([&] { model->interpolate(a, b, 1); }, "steps");
  expect_error([&] { model->interpolate(images(2, 1, 16, 16), b, 3); }, "[1, C, H, W]");
}

TEST(VAE, SaveLoadGivesIdenticalOutputs) {
  for (const char* variant : {"conv", "spatial"}) {
    SCOPED_TRACE(variant);
    const auto options = tiny_conv().variant(variant);
    VAE model(options), loaded(options);
    model->train_step(images(4, 1, 16, 16));  // moves the BatchNorm running statistics
    test::expect_round_trip_identical(model, loaded, images(2, 1, 16, 16),
                                      std::string("lf_vae_roundtrip_") + variant);
  }
}

TEST(VAE, OptionsJsonRoundTrip) {
  const auto options = VAEOptions()
                           .variant("spatial")
                           .in_channels(1)
                           .image_size(32)
                           .hidden({8, 16})
                           .latent_dim(7)
                           .latent_channels(3)
                           .num_res_blocks(2)
                           .activation("silu")
                           .kl_weight(0.5)
                           .loss("l1")
                           .output_activation("relu");
  const Json json = options;
  EXPECT_EQ(Json(json.get<VAEOptions>()), json);
  EXPECT_EQ(VAE(options)->options_json(), json);
  expect_error(
      [] {
        VAEOptions o;
        from_json(Json{{"kl", 1.0}}, o);
      },
      "unknown option 'kl'");
  expect_error([] { VAE(VAEOptions().variant("dense")); },
               "variant: expected one of conv, spatial");
  expect_error([] { vae_preset("celeba"); }, "known: face64, fashion");
}

}  // namespace
}  // namespace lf
