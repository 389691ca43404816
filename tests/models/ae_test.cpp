// AE: shapes for every preset and other sizes, overfitting, gradients, save/load, options JSON.
#include "models/ae.h"

#include <gtest/gtest.h>

#include "models/model_test_util.h"

#include <filesystem>

namespace lf {
namespace {

using test::expect_error;
using test::images;
using test::overfit_ratio;
using test::smooth_images;

TEST(AE, ShapesForEveryPresetAndOtherSizes) {
  struct Case {
    std::string preset;
    int64_t channels, size, latent, factor, other_h, other_w;
  };
  for (const auto& c :
       {Case{"fashion", 1, 28, 4, 4, 32, 20}, Case{"face64", 3, 64, 8, 8, 48, 40}}) {
    SCOPED_TRACE(c.preset);
    AE model(ae_preset(c.preset));
    EXPECT_EQ(model->factor(), c.factor);
    for (auto [h, w] : {std::pair{c.size, c.size}, std::pair{c.other_h, c.other_w}}) {
      const auto x = images(2, c.channels, h, w);
      const auto code = model->encode(x);
      EXPECT_EQ(code.at("latents").sizes(),
                (std::vector<int64_t>{2, c.latent, h / c.factor, w / c.factor}));
      EXPECT_EQ(model->decode(code).sizes(), x.sizes());
      const auto out = model->train_step(x);
      EXPECT_EQ(out.reconstruction.sizes(), x.sizes());
      EXPECT_EQ(out.loss.dim(), 0);
      EXPECT_TRUE(out.logs.count("loss_rec") && out.logs.count("loss"));
    }
  }
}

TEST(AE, RejectsBadInputs) {
  AE model(ae_preset("fashion"));
  expect_error([&] { model->encode(images(1, 1, 30, 28)); }, "[ae::encode] expected [N, 1, H, W]");
  expect_error([&] { model->encode(images(1, 3, 28, 28)); }, "divisible by 4");
  expect_error([&] { model->decode({{"mean", torch::zeros({1, 4, 7, 7})}}); }, "latents");
  expect_error([&] { model->sample(4); }, "[ae::sample]");
  expect_error([] { AE(AEOptions().loss("l3")); }, "loss: expected one of l2, l1");
  expect_error([] { AE(AEOptions().hidden(std::vector<int64_t>{})); }, "hidden");
  expect_error([] { ae_preset("nope"); }, "known: fashion, face64");
}

TEST(AE, OverfitsATinyBatch) {
  for (const auto& [loss, bound] : {std::pair{"l2", 0.5}, std::pair{"l1", 0.7}}) {
    SCOPED_TRACE(loss);
    torch::manual_seed(0);
    AE model(AEOptions().hidden({8, 16}).num_res_blocks(1).loss(loss));
    EXPECT_LT(overfit_ratio(model, smooth_images(4, 1, 16, 16), 1e-2, 30, "loss_rec"), bound);
  }
}

TEST(AE, LossMatchesItsDefinition) {
  AE model(AEOptions().hidden({8}).num_res_blocks(0).loss("l1").output_activation("tanh"));
  const auto x = images(2, 1, 8, 8);
  const auto out = model->train_step(x);
  EXPECT_NEAR(out.loss.item<double>(), (out.reconstruction - x).abs().mean().item<double>(), 1e-6);
  EXPECT_LE(out.reconstruction.abs().max().item<double>(), 1.0);
}

TEST(AE, GradientsReachTheFirstConv) {
  AE model(ae_preset("fashion"));
  model->train_step(images(2, 1, 28, 28)).loss.backward();
  const auto params = model->named_parameters();
  const auto grad = params["encoder.down.0.weight"].grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<double>(), 0);
}

TEST(AE, SaveLoadGivesIdenticalOutputs) {
  const auto options = AEOptions().hidden({8, 16}).num_res_blocks(1);
  AE model(options), loaded(options);
  test::expect_round_trip_identical(model, loaded, images(2, 1, 16, 16), "lf_ae_roundtrip");
}

TEST(AE, OptionsJsonRoundTrip) {
  const auto options = AEOptions()
                           .in_channels(3)
                           .hidden({16, 32, 48})
                           .num_res_blocks(0)
                           .latent_channels(6)
                           .loss("l1")
                           .activation("silu")
                           .output_activation("tanh");
  const Json json = options;
  const auto back = json.get<AEOptions>();
  EXPECT_EQ(Json(back), json);
  EXPECT_EQ(back.hidden(), (std::vector<int64_t>{16, 32, 48}));
  EXPECT_EQ(AE(options)->options_json(), json);

  AEOptions partial;
  from_json(Json{{"latent_channels", 2}}, partial);  // other keys keep their defaults
  EXPECT_EQ(partial.latent_channels(), 2);
  EXPECT_EQ(partial.hidden(), AEOptions().hidden());
  expect_error(
      [] {
        AEOptions o;
        from_json(Json{{"latent", 2}}, o);
      },
      "unknown option 'latent'");
  expect_error(
      [] {
        AEOptions o;
        from_json(Json{{"hidden", "x"}}, o);
      },
      "key 'hidden'");
}

}  // namespace
}  // namespace lf
