// Golden parity with the reference Python modules: taming's VQModel and ldm's AutoencoderKL, run by
// scripts/make_ldm_fixtures.py on random weights; our encoder output, moments, indices, posterior
// and decoder output must match to 1e-4 (float32, CPU).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>
#include <string>

#include "io/config.h"
#include "io/safetensors.h"
#include "io/state_dict.h"
#include "models/autoencoder_kl.h"
#include "models/diagonal_gaussian.h"
#include "models/model_registry.h"
#include "models/vqgan.h"

namespace lf {
namespace {

const std::set<std::string> kOutputs = {"input", "encoder_out", "moments", "indices", "z_q",
                                        "mean",  "logvar",      "kl",      "decoded"};
constexpr double kTolerance = 1e-4;

struct Golden {
  AutoencoderPtr model;
  TensorMap tensors;  // reference inputs and outputs
};

// The fixture's model (config from NAME.json, inference only) with its weights loaded strictly.
Golden load_golden(const std::string& name) {
  const std::string base = std::string(LF_TEST_DATA_DIR) + "/ldm/" + name;
  const Json fixture = Config::from_yaml_file(base + ".json").json();
  Json model_config = {{"type", fixture.at("type")},
                       {"ddconfig", fixture.at("ddconfig")},
                       {"embed_dim", fixture.at("embed_dim")},
                       {"loss", nullptr}};
  for (const char* key : {"n_embed", "scale_factor"})
    if (fixture.contains(key)) model_config[key] = fixture.at(key);
  Golden golden;
  golden.model = make_model(Config(model_config, base + ".json"));
  TensorMap weights;
  for (auto& [key, tensor] : load_safetensors(base + ".safetensors")) {
    if (kOutputs.count(key))
      golden.tensors[key] = tensor;
    else
      weights[key] = tensor.to(torch::kFloat32);
  }
  const LoadReport report = load_module_state(*golden.model, weights, /*strict=*/true, base);
  EXPECT_EQ(report.loaded, weights.size());
  golden.model->eval();
  return golden;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a - b).abs().max().item<double>();
}

void expect_vq_parity(const std::string& name) {
  auto golden = load_golden(name);
  auto* vq = dynamic_cast<VQGANImpl*>(golden.model.get());
  ASSERT_NE(vq, nullptr);
  torch::NoGradGuard no_grad;
  const auto& t = golden.tensors;
  const auto x = t.at("input");
  EXPECT_LE(max_abs_diff(vq->encoder(x), t.at("encoder_out")), kTolerance);
  EXPECT_LE(max_abs_diff(vq->encode_moments(x), t.at("moments")), kTolerance);
  const auto code = vq->encode(x);
  EXPECT_TRUE(torch::equal(code.at("indices"), t.at("indices")))
      << "indices differ at " << (code.at("indices") != t.at("indices")).sum().item<int64_t>()
      << " positions";
  EXPECT_LE(max_abs_diff(code.at("latents"), t.at("z_q")), kTolerance);
  // Decoding the reference's own indices isolates the decoder from the encoder's rounding.
  EXPECT_LE(max_abs_diff(vq->decode({{"indices", t.at("indices")}}), t.at("decoded")), kTolerance);
  EXPECT_LE(max_abs_diff(vq->reconstruct(x), t.at("decoded")), kTolerance);
}

void expect_kl_parity(const std::string& name) {
  auto golden = load_golden(name);
  auto* kl = dynamic_cast<AutoencoderKLImpl*>(golden.model.get());
  ASSERT_NE(kl, nullptr);
  torch::NoGradGuard no_grad;
  const auto& t = golden.tensors;
  const auto x = t.at("input");
  EXPECT_LE(max_abs_diff(kl->encoder(x), t.at("encoder_out")), kTolerance);
  const auto moments = kl->encode_moments(x);
  EXPECT_LE(max_abs_diff(moments, t.at("moments")), kTolerance);
  const auto code = kl->encode(x);
  EXPECT_LE(max_abs_diff(code.at("mean"), t.at("mean")), kTolerance);
  EXPECT_LE(max_abs_diff(code.at("logvar"), t.at("logvar")), kTolerance);
  // The KL can be ~1e10 when logvar sits at the clamp: compare relatively.
  const auto ref_kl = t.at("kl");
  EXPECT_TRUE(torch::allclose(DiagonalGaussian(moments).kl(), ref_kl, 1e-5, 1e-4))
      << DiagonalGaussian(moments).kl() << " vs " << ref_kl;
  EXPECT_LE(max_abs_diff(kl->decode({{"mean", t.at("mean")}}), t.at("decoded")), kTolerance);
  EXPECT_LE(max_abs_diff(kl->decode({{"latents", t.at("mean") * kl->options().scale_factor()}}),
                         t.at("decoded")),
            kTolerance);
}

TEST(LdmParity, TamingVQGAN) {
  expect_vq_parity("taming_vqgan");
}

TEST(LdmParity, VQGANNonSquareInput) {
  expect_vq_parity("vqgan_nonsquare");
}

TEST(LdmParity, StableDiffusionKLReducedWidth) {
  expect_kl_parity("sd_kl_small");
}

TEST(LdmParity, KLAttentionAtTwoResolutionsWithClampedLogvar) {
  expect_kl_parity("kl_attn_two_res");
}

}  // namespace
}  // namespace lf
