// VQGAN and the KL autoencoder as trainable models: config round trips, presets, a training step
// with the discriminator, inference-only models refusing to train, and tiled encode/decode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/state_dict.h"
#include "models/autoencoder_kl.h"
#include "models/model_registry.h"
#include "models/model_test_util.h"
#include "models/vqgan.h"

namespace lf {
namespace {

Json tiny_ddconfig() {
  return {{"ch", 32},         {"ch_mult", {1, 2}}, {"num_res_blocks", 1}, {"attn_resolutions", {8}},
          {"resolution", 16}, {"in_channels", 1},  {"out_ch", 1},         {"z_channels", 4},
          {"double_z", false}};
}

AutoencoderPtr tiny(const std::string& type) {
  Json dd = tiny_ddconfig();
  Json config = {{"type", type}, {"ddconfig", dd}, {"embed_dim", 4}};
  config["loss"] = {
      {"disc_in_channels", 1}, {"disc_ndf", 8}, {"disc_num_layers", 2}, {"disc_start", 0}};
  if (type == "vqgan") {
    config["n_embed"] = 16;
  } else {
    config["ddconfig"]["double_z"] = true;
  }
  return make_model(Config(config));
}

TEST(LdmAutoencoder, OptionsRoundTripThroughJson) {
  for (const char* type : {"vqgan", "autoencoder_kl"}) {
    auto model = tiny(type);
    Json config = model->options_json();
    config["type"] = type;
    auto again = make_model(Config(config));
    EXPECT_EQ(again->options_json(), model->options_json()) << type;
    EXPECT_EQ(module_state(*again).size(), module_state(*model).size()) << type;
  }
}

TEST(LdmAutoencoder, PresetsBuild) {
  for (const auto& name : model_type_names(image_model_types())) {
    if (name.rfind("vqgan:", 0) != 0 && name.rfind("autoencoder_kl:", 0) != 0) continue;
    const auto colon = name.find(':');
    auto model = make_model(
        Config(Json{{"type", name.substr(0, colon)}, {"preset", name.substr(colon + 1)}}));
    EXPECT_GT(model->parameters().size(), 0u) << name;
  }
}

TEST(LdmAutoencoder, KeysMatchTheOriginals) {
  const auto vq = module_state(*tiny("vqgan"));
  for (const char* key : {"encoder.down.1.attn.0.q.weight", "quant_conv.weight",
                          "quantize.embedding.weight", "post_quant_conv.bias",
                          "decoder.up.1.upsample.conv.weight", "loss.discriminator.main.0.weight"})
    EXPECT_TRUE(vq.count(key)) << key;
  const auto kl = module_state(*tiny("autoencoder_kl"));
  EXPECT_TRUE(kl.count("loss.logvar"));
  EXPECT_EQ(kl.at("quant_conv.weight").size(0), 8);        // 2 * embed_dim
  EXPECT_EQ(kl.at("encoder.conv_out.weight").size(0), 8);  // double_z
}

TEST(LdmAutoencoder, TrainStepsWithTheDiscriminator) {
  torch::manual_seed(0);
  for (const char* type : {"vqgan", "autoencoder_kl"}) {
    auto model = tiny(type);
    model->train();
    const auto x = test::smooth_images(4, 1, 16, 16);
    model->set_step(0);
    auto out = model->train_step(x);
    EXPECT_TRUE(torch::isfinite(out.loss).item<bool>()) << type;
    EXPECT_EQ(out.reconstruction.sizes(), x.sizes());
    EXPECT_TRUE(out.logs.count("d_weight")) << type;
    out.loss.backward();
    ASSERT_TRUE(model->discriminator_active(0));
    const auto disc = model->discriminator_parameters();
    ASSERT_FALSE(disc.empty());
    auto d = model->discriminator_step(x, out.reconstruction);
    EXPECT_TRUE(torch::isfinite(d.loss).item<bool>()) << type;
    EXPECT_TRUE(d.logs.count("loss_d")) << type;
  }
}

TEST(LdmAutoencoder, InferenceOnlyModelsRefuseToTrain) {
  Json config = {{"type", "vqgan"},
                 {"ddconfig", tiny_ddconfig()},
                 {"embed_dim", 4},
                 {"n_embed", 16},
                 {"loss", nullptr}};
  auto model = make_model(Config(config));
  EXPECT_TRUE(model->discriminator_parameters().empty());
  for (const auto& [key, value] : module_state(*model)) EXPECT_NE(key.rfind("loss.", 0), 0u) << key;
  test::expect_error([&] { model->train_step(test::images(1, 1, 16, 16)); }, "loss");
}

TEST(LdmAutoencoder, EncodeDecodeShapesAndCodes) {
  torch::NoGradGuard no_grad;
  auto vq = tiny("vqgan");
  vq->eval();
  const auto x = test::images(2, 1, 16, 24);
  const auto code = vq->encode(x);
  EXPECT_EQ(code.at("indices").sizes(), (std::vector<int64_t>{2, 8, 12}));
  EXPECT_EQ(code.at("indices").scalar_type(), torch::kInt64);
  EXPECT_EQ(vq->decode({{"indices", code.at("indices")}}).sizes(), x.sizes());
  test::expect_error([&] { vq->decode({}); }, "indices");

  auto kl = tiny("autoencoder_kl");
  kl->eval();
  const auto posterior = kl->encode(x);
  EXPECT_EQ(posterior.at("mean").sizes(), (std::vector<int64_t>{2, 4, 8, 12}));
  EXPECT_EQ(posterior.at("logvar").sizes(), (std::vector<int64_t>{2, 4, 8, 12}));
  EXPECT_TRUE(torch::allclose(kl->decode({{"mean", posterior.at("mean")}}),
                              kl->decode({{"latents", posterior.at("latents")}}), 1e-5, 1e-5));
}

TEST(LdmAutoencoder, TiledEncodeDecodeStaysCloseToUntiled) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  auto model = tiny("autoencoder_kl");
  auto* kl = dynamic_cast<AutoencoderKLImpl*>(model.get());
  kl->eval();
  const auto x = test::smooth_images(1, 1, 48, 64);
  const auto full_moments = kl->encode_moments(x);
  const auto full = kl->decode_latents(full_moments.narrow(1, 0, 4));
  kl->set_tiling({16, 8});
  const auto tiled_moments = kl->encode_moments(x);
  const auto tiled = kl->decode_latents(tiled_moments.narrow(1, 0, 4));
  EXPECT_EQ(tiled.sizes(), full.sizes());
  // GroupNorm statistics and attention are per tile, so tiles differ from the whole image a little;
  // blending keeps the difference small relative to the output's range.
  const double range = (full.max() - full.min()).item<double>();
  EXPECT_LT((tiled - full).abs().mean().item<double>(), 0.1 * range);
  test::expect_error([&] { kl->set_tiling({15, 4}); }, "multiples of the downsampling factor 2");
}

TEST(LdmAutoencoder, StreamedEncodeAndDecodeEqualUntiled) {
  // VQGAN: attention in the latent level too; KL: in the middle only. Every step streams, with the
  // full-resolution level stored or recomputed.
  for (const char* type : {"vqgan", "autoencoder_kl"}) {
    torch::manual_seed(2);
    auto model = tiny(type);
    auto* ldm = dynamic_cast<LdmAutoencoderImpl*>(model.get());
    ldm->eval();
    torch::NoGradGuard no_grad;
    const auto x = test::smooth_images(2, 1, 22, 14);
    const auto moments = ldm->encode_moments(x);
    const auto z = moments.narrow(1, 0, 4);
    const auto y = ldm->decode_latents(z);
    const auto scale = [](const torch::Tensor& t) { return t.abs().max().item<double>(); };
    for (const bool recompute : {false, true}) {
      ldm->set_memory_plan(MemoryPlan().stream(true).streaming(
          StreamingOptions().band_bytes(1).recompute_full_resolution(recompute)));
      EXPECT_LT((ldm->encode_moments(x) - moments).abs().max().item<double>(),
                1e-4 * scale(moments))
          << type << " recompute " << recompute;
      EXPECT_LT((ldm->decode_latents(z) - y).abs().max().item<double>(), 1e-4 * scale(y))
          << type << " recompute " << recompute;
      EXPECT_TRUE(ldm->take_plan_notes().empty());  // forced streaming: nothing to report
    }
  }
}

TEST(LdmAutoencoder, AnyImageSizeIsPaddedAndCroppedBack) {
  torch::manual_seed(3);
  auto model = tiny("autoencoder_kl");
  auto* kl = dynamic_cast<AutoencoderKLImpl*>(model.get());
  kl->eval();
  torch::NoGradGuard no_grad;
  const auto x = test::smooth_images(1, 1, 13, 21);
  EXPECT_EQ(kl->encode(x).at("mean").sizes(), (std::vector<int64_t>{1, 4, 7, 11}));
  const auto y = kl->reconstruct(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  // The padding is a reflection: row 13 repeats row 11, column 21 column 19.
  const auto padded = pad_to_factor(x, 2);
  EXPECT_EQ(padded.sizes(), (std::vector<int64_t>{1, 1, 14, 22}));
  EXPECT_TRUE(torch::equal(padded.select(2, 13).narrow(2, 0, 21), x.select(2, 11)));
  EXPECT_TRUE(torch::equal(padded.select(3, 21).narrow(2, 0, 13), x.select(3, 19)));
  EXPECT_TRUE(torch::allclose(y, kl->decode(kl->encode(padded)).narrow(2, 0, 13).narrow(3, 0, 21)));
  // A side shorter than its padding is replicated instead.
  EXPECT_EQ(pad_to_factor(torch::rand({1, 1, 1, 3}), 8).sizes(),
            (std::vector<int64_t>{1, 1, 8, 8}));
  // Training still needs whole multiples.
  test::expect_error([&] { model->train_step(x); }, "divisible by 2");
}

TEST(LdmAutoencoder, MemoryBoundChoosesStreamingAndSaysSo) {
  torch::manual_seed(4);
  auto model = tiny("autoencoder_kl");
  auto* kl = dynamic_cast<AutoencoderKLImpl*>(model.get());
  kl->eval();
  const auto x = test::smooth_images(1, 1, 32, 32);
  torch::Tensor full;
  {
    torch::NoGradGuard no_grad;
    full = kl->reconstruct(x);
    kl->set_memory_plan(MemoryPlan().max_bytes(int64_t{1} << 30));  // fits: runs whole
    kl->reconstruct(x);
    EXPECT_TRUE(kl->take_plan_notes().empty());
    // Not even streamed with float16 storage: the full-resolution level recomputed too.
    kl->set_memory_plan(MemoryPlan().max_bytes(1000));
    const auto streamed = kl->reconstruct(x);
    EXPECT_LT((streamed - full).abs().max().item<double>(), 1e-2 * full.abs().max().item<double>());
    const auto notes = kl->take_plan_notes();
    ASSERT_EQ(notes.size(), 2u);
    EXPECT_NE(notes[0].find("encode: streamed in row bands with float16 storage"),
              std::string::npos)
        << notes[0];
    EXPECT_NE(notes[1].find("decode: streamed in row bands with float16 storage"),
              std::string::npos)
        << notes[1];
    for (const auto& note : notes)
      EXPECT_NE(note.find("full-resolution level recomputed"), std::string::npos) << note;
  }
  kl->reconstruct(x);  // gradients on: the modules' own forward
  EXPECT_TRUE(kl->take_plan_notes().empty());
  test::expect_error([&] { kl->set_memory_plan(MemoryPlan().max_bytes(-1)); }, "max_bytes");
}

// A VQGAN's codes are an argmin over the encoder's output: its streamed encoder keeps float32
// maps whatever the plan says (float16 ones changed codes of a trained model), its decoder not.
TEST(LdmAutoencoder, VqganEncoderNeverStoresFloat16) {
  torch::manual_seed(5);
  auto model = tiny("vqgan");
  auto* vq = dynamic_cast<LdmAutoencoderImpl*>(model.get());
  vq->eval();
  torch::NoGradGuard no_grad;
  const auto x = test::smooth_images(1, 1, 32, 32);
  const auto moments = vq->encode_moments(x);
  const double scale = moments.abs().max().item<double>();
  const auto half = StreamingOptions().band_bytes(1).half_storage(true);
  for (const auto& plan :
       {MemoryPlan().max_bytes(1000), MemoryPlan().stream(true).streaming(half)}) {
    vq->set_memory_plan(plan);
    // float32 round-off; float16 storage is about 1e-3 of the scale
    EXPECT_LT((vq->encode_moments(x) - moments).abs().max().item<double>(), 1e-5 * scale);
    vq->decode_latents(moments);
    const auto notes = vq->take_plan_notes();
    ASSERT_EQ(notes.size(), plan.stream() ? 1u : 2u);
    EXPECT_NE(notes[0].find("encode"), std::string::npos) << notes[0];
    EXPECT_NE(notes[0].find("float32 storage"), std::string::npos) << notes[0];
    EXPECT_EQ(notes[0].find("float16 storage"), std::string::npos) << notes[0];
    if (!plan.stream()) {
      EXPECT_NE(notes[0].find("full-resolution level recomputed"), std::string::npos) << notes[0];
      EXPECT_NE(notes[1].find("decode: streamed in row bands with float16 storage"),
                std::string::npos)
          << notes[1];
    }
  }
}

}  // namespace
}  // namespace lf
