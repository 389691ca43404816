// VQ-VAE: shapes, logs, encode/decode paths, overfitting, gradients through the straight-through
// estimator, the collapse preset, save/load and options JSON.
#include "models/vqvae.h"

#include <gtest/gtest.h>

#include "models/model_test_util.h"

#include <filesystem>

namespace lf {
namespace {

using test::expect_error;
using test::images;
using test::overfit_ratio;
using test::smooth_images;

VQVAEOptions tiny() {
  auto o = VQVAEOptions().hidden({16, 32}).num_res_blocks(1);
  o.quantizer().num_codes(32).code_dim(8);
  return o;
}

TEST(VQVAE, ShapesForEveryPresetAndOtherSizes) {
  for (const auto& preset : vqvae_preset_names()) {
    SCOPED_TRACE(preset);
    VQVAE model(vqvae_preset(preset));
    const int64_t d = model->options().quantizer().code_dim();
    for (auto [h, w] : {std::pair{28, 28}, std::pair{16, 24}}) {
      const auto x = images(2, 1, h, w);
      const auto code = model->encode(x);
      EXPECT_EQ(code.at("indices").sizes(), (std::vector<int64_t>{2, h / 4, w / 4}));
      EXPECT_EQ(code.at("indices").scalar_type(), torch::kLong);
      EXPECT_EQ(code.at("latents").sizes(), (std::vector<int64_t>{2, d, h / 4, w / 4}));
      EXPECT_EQ(model->decode(code).sizes(), x.sizes());
      EXPECT_EQ(model->train_step(x).reconstruction.sizes(), x.sizes());
    }
  }
  VQVAE model(vqvae_preset("fashion"));
  expect_error([&] { model->encode(images(1, 1, 30, 28)); }, "[vqvae::encode]");
  expect_error([&] { model->decode({{"mean", torch::zeros({1, 32, 7, 7})}}); }, "indices");
  expect_error([&] { model->sample(1); }, "[vqvae::sample]");
}

TEST(VQVAE, TrainStepLogsEveryTermAndStatistic) {
  VQVAE model(tiny());
  const auto out = model->train_step(images(4, 1, 16, 16));
  for (const char* key : {"loss", "loss_rec", "loss_vq", "loss_codebook", "loss_commit", "vq_usage",
                          "vq_perplexity", "vq_entropy", "vq_dead_codes", "vq_restarted"})
    EXPECT_TRUE(out.logs.count(key)) << key;
  const auto& logs = out.logs;
  EXPECT_NEAR(logs.at("loss"), logs.at("loss_rec") + logs.at("loss_vq"), 1e-5);
  // beta = 0.25 on the commitment term (not taming's legacy placement).
  EXPECT_NEAR(logs.at("loss_vq"), logs.at("loss_codebook") + 0.25 * logs.at("loss_commit"), 1e-5);
  EXPECT_GT(logs.at("vq_usage"), 0);
  EXPECT_LE(logs.at("vq_usage"), 1);
}

TEST(VQVAE, KeysFollowTaming) {
  VQVAE model(vqvae_preset("fashion"));
  const auto params = model->named_parameters();
  ASSERT_TRUE(params.contains("quantize.embedding.weight"));
  EXPECT_EQ(params["quantize.embedding.weight"].sizes(), (std::vector<int64_t>{256, 32}));
}

TEST(VQVAE, EncodeNeverUpdatesTheCodebookAndDecodesBothWays) {
  VQVAE model(tiny());  // k-means init pending: a training-mode quantizer call would run it
  const auto before = model->quantize->embedding->weight.clone();
  const auto x = images(2, 1, 16, 16);
  const auto code = model->encode(x);
  EXPECT_TRUE(torch::equal(before, model->quantize->embedding->weight));
  EXPECT_TRUE(model->quantize->is_training());
  torch::NoGradGuard no_grad;
  const auto from_indices = model->decode({{"indices", code.at("indices")}});
  const auto from_latents = model->decode({{"latents", code.at("latents")}});
  EXPECT_TRUE(torch::allclose(from_indices, from_latents, 1e-5, 1e-5));
}

TEST(VQVAE, OverfitsATinyBatch) {
  torch::manual_seed(0);
  VQVAE model(tiny());
  EXPECT_LT(overfit_ratio(model, smooth_images(4, 1, 16, 16), 1e-2, 40, "loss_rec"), 0.6);
}

TEST(VQVAE, GradientsReachTheFirstConvThroughTheQuantizer) {
  VQVAE model(tiny());  // 64 vectors for 32 codes: k-means cannot place every code on a vector
  model->train_step(images(4, 1, 16, 16)).loss.backward();
  const auto params = model->named_parameters();
  for (const char* key : {"encoder.down.0.weight", "quantize.embedding.weight"}) {
    const auto grad = params[key].grad();
    ASSERT_TRUE(grad.defined()) << key;
    EXPECT_GT(grad.abs().sum().item<double>(), 0) << key;
  }
}

TEST(VQVAE, CollapsePresetCollapsesAndRestartRepairsIt) {
  torch::manual_seed(0);
  const auto x = images(8, 1, 28, 28);
  const auto used_codes = [&](VQVAEOptions options) {
    VQVAE model(options);
    const auto logs = model->train_step(x).logs;
    return logs.at("vq_usage") * static_cast<double>(options.quantizer().num_codes());
  };
  const double collapsed = used_codes(vqvae_preset("fashion_collapse"));
  EXPECT_LE(collapsed, 2.0);
  EXPECT_GT(used_codes(vqvae_preset("fashion")), 20 * collapsed);  // k-means init
  // Dead-code restart re-seeds the unused codes from encoder outputs within a few steps.
  auto repaired = vqvae_preset("fashion_collapse");
  repaired.quantizer().dead_code_restart(true).usage_decay(0.1);
  VQVAE model(repaired);
  double restarted = 0;
  for (int step = 0; step < 5; ++step) restarted += model->train_step(x).logs.at("vq_restarted");
  EXPECT_GT(restarted, 100);
  EXPECT_GT(model->train_step(x).logs.at("vq_usage") * 512, 20 * collapsed);
}

TEST(VQVAE, SaveLoadGivesIdenticalOutputs) {
  const auto options = tiny();
  VQVAE model(options), loaded(options);
  model->train_step(images(4, 1, 16, 16));  // runs the k-means init (sets its buffer)
  const auto x = images(2, 1, 16, 16);
  test::expect_round_trip_identical(model, loaded, x, "lf_vqvae_roundtrip");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->encode(x).at("indices"), loaded->encode(x).at("indices")));
}

TEST(VQVAE, OptionsJsonRoundTrip) {
  auto options = VQVAEOptions()
                     .in_channels(3)
                     .hidden({8, 16, 32})
                     .num_res_blocks(1)
                     .activation("silu")
                     .loss("l1")
                     .output_activation("tanh")
                     .codebook_init_offset(1.5);
  options.quantizer()
      .num_codes(64)
      .code_dim(4)
      .beta(0.5)
      .legacy_beta(true)
      .use_ema(true)
      .ema_decay(0.9)
      .kmeans_init(false)
      .dead_code_restart(false)
      .dead_code_threshold(0.01)
      .l2_normalize(true)
      .lookup_dim(2);
  const Json json = options;
  EXPECT_EQ(json.at("quantizer").at("num_codes"), 64);
  EXPECT_EQ(Json(json.get<VQVAEOptions>()), json);
  EXPECT_EQ(VQVAE(options)->options_json(), json);

  VQVAEOptions partial;  // a nested override keeps the other quantizer options
  from_json(Json{{"quantizer", {{"num_codes", 16}}}}, partial);
  EXPECT_EQ(partial.quantizer().num_codes(), 16);
  EXPECT_EQ(partial.quantizer().code_dim(), 32);
  EXPECT_TRUE(partial.quantizer().kmeans_init());
  expect_error(
      [] {
        VQVAEOptions o;
        from_json(Json{{"quantizer", {{"codes", 1}}}}, o);
      },
      "[quantizer options] unknown option 'codes'");
  expect_error([] { vqvae_preset("mnist"); }, "known: fashion, fashion_collapse");
}

}  // namespace
}  // namespace lf
