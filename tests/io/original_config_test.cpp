// Original taming / latent-diffusion / Stable Diffusion configs -> our model configs: the
// published files give the expected values (with the reference defaults filled in), the results
// are accepted by the models' option parsers, and unsupported configs fail naming file and key.
#include "io/original_config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "losses/autoencoder_gan_loss.h"
#include "models/autoencoder_kl.h"
#include "models/vqgan.h"

namespace lf {
namespace {

std::string config_fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/import/" + name;
}

Json convert_file(const std::string& name) {
  const Config config = Config::from_yaml_file(config_fixture(name));
  EXPECT_TRUE(is_original_config(config.json()));
  return model_config_from_original(config.json(), config.source());
}

Json convert_yaml(const std::string& yaml) {
  return model_config_from_original(Config::from_yaml_string(yaml, "x.yaml").json(), "x.yaml");
}

void expect_config_error(const std::string& yaml, const std::string& expected) {
  try {
    const Json out = convert_yaml(yaml);
    ADD_FAILURE() << "converted to " << out.dump()
                  << "; expected an error containing: " << expected;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[original_config] x.yaml: ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "expected '" << expected << "' in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(OriginalConfigTest, StableDiffusionV1TakesTheFirstStage) {
  const Json expected = Json::parse(R"({
    "type": "autoencoder_kl",
    "ddconfig": {"ch": 128, "out_ch": 3, "in_channels": 3, "resolution": 256, "z_channels": 4,
                 "num_res_blocks": 2, "ch_mult": [1, 2, 4, 4], "attn_resolutions": [],
                 "dropout": 0.0, "double_z": true},
    "embed_dim": 4,
    "scale_factor": 0.18215})");
  EXPECT_EQ(convert_file("v1-inference.yaml"), expected);
}

TEST(OriginalConfigTest, TamingVQGANWithItsLoss) {
  const Json expected = Json::parse(R"({
    "type": "vqgan",
    "ddconfig": {"ch": 128, "out_ch": 3, "in_channels": 3, "resolution": 256, "z_channels": 256,
                 "num_res_blocks": 2, "ch_mult": [1, 1, 2, 2, 4], "attn_resolutions": [16],
                 "dropout": 0.0, "double_z": false},
    "embed_dim": 256,
    "n_embed": 1024,
    "loss_original": {"kind": "vq", "disc_start": 30001, "disc_weight": 0.8,
                      "codebook_weight": 1.0, "disc_in_channels": 3, "disc_factor": 1.0,
                      "disc_num_layers": 3, "disc_ndf": 64, "disc_loss": "hinge",
                      "use_actnorm": false, "perceptual_weight": 1.0, "pixel_weight": 1.0}})");
  EXPECT_EQ(convert_file("faceshq_vqgan.yaml"), expected);
}

TEST(OriginalConfigTest, LdmAutoencoderKLWithItsLoss) {
  const Json expected = Json::parse(R"({
    "type": "autoencoder_kl",
    "ddconfig": {"ch": 32, "out_ch": 1, "in_channels": 1, "resolution": 32, "z_channels": 3,
                 "num_res_blocks": 1, "ch_mult": [1, 2], "attn_resolutions": [16],
                 "dropout": 0.1, "double_z": true, "attn_type": "vanilla"},
    "embed_dim": 3,
    "scale_factor": 1.0,
    "loss_original": {"kind": "kl", "disc_start": 501, "kl_weight": 1e-6, "disc_weight": 0.5,
                      "disc_in_channels": 1, "logvar_init": -1.5, "disc_factor": 1.0,
                      "disc_num_layers": 3, "disc_ndf": 64, "disc_loss": "hinge",
                      "use_actnorm": false, "perceptual_weight": 1.0, "pixel_weight": 1.0}})");
  EXPECT_EQ(convert_file("tiny_autoencoder_kl.yaml"), expected);
}

// The contract with the models: their option parsers take what comes out (loss_original as the
// loss options).
TEST(OriginalConfigTest, ModelsAcceptTheResult) {
  for (const char* name : {"v1-inference.yaml", "faceshq_vqgan.yaml", "tiny_autoencoder_kl.yaml"}) {
    SCOPED_TRACE(name);
    Json config = convert_file(name);
    const std::string type = config["type"];
    config.erase("type");
    if (config.contains("loss_original")) {
      config["loss"] = config["loss_original"];
      config.erase("loss_original");
    }
    if (type == "vqgan") {
      VQGANOptions options;
      EXPECT_NO_THROW(from_json(config, options));
      EXPECT_EQ(options.n_embed(), 1024);
      ASSERT_TRUE(options.loss().has_value());
      EXPECT_EQ(options.loss()->disc_start(), 30001);
    } else {
      AutoencoderKLOptions options;
      EXPECT_NO_THROW(from_json(config, options));
      check_ldm_coder_options(options.ddconfig(), name);
      if (config.contains("loss")) {
        ASSERT_TRUE(options.loss().has_value());
        EXPECT_EQ(options.loss()->kind(), "kl");
        EXPECT_EQ(options.loss()->logvar_init(), -1.5);
      }
    }
  }
}

TEST(OriginalConfigTest, LatentDiffusionWithAVQFirstStage) {
  const Json out = convert_yaml(R"(
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    first_stage_config:
      target: ldm.models.autoencoder.VQModelInterface
      params:
        embed_dim: 4
        n_embed: 16384
        ckpt_path: configs/first_stage_models/vq-f8/model.yaml
        ddconfig: {double_z: false, z_channels: 4, resolution: 256, in_channels: 3, out_ch: 3,
                   ch: 128, ch_mult: [1, 2, 2, 4], num_res_blocks: 2, attn_resolutions: [32],
                   dropout: 0.0}
        lossconfig: {target: torch.nn.Identity}
    cond_stage_config: {target: ldm.modules.encoders.modules.ClassEmbedder}
)");
  EXPECT_EQ(out["type"], "vqgan");
  EXPECT_EQ(out["n_embed"], 16384);
  EXPECT_EQ(out["ddconfig"]["attn_resolutions"], Json::array({32}));
  EXPECT_FALSE(out.contains("loss_original"));
}

TEST(OriginalConfigTest, DefaultsOfTheReferenceAreFilledIn) {
  const Json out = convert_yaml(R"(
model:
  target: ldm.models.autoencoder.AutoencoderKL
  params:
    embed_dim: 4
    ddconfig: {z_channels: 4, resolution: 256, in_channels: 3, out_ch: 3, ch: 128,
               num_res_blocks: 2, attn_resolutions: [], use_linear_attn: false,
               resamp_with_conv: true}
)");
  EXPECT_EQ(out["ddconfig"]["ch_mult"], Json::array({1, 2, 4, 8}));
  EXPECT_EQ(out["ddconfig"]["double_z"], true);
  EXPECT_EQ(out["ddconfig"]["dropout"], 0.0);
  EXPECT_EQ(out["ddconfig"]["resamp_with_conv"], true);
  EXPECT_FALSE(out["ddconfig"].contains("use_linear_attn"));
  EXPECT_EQ(out["scale_factor"], 1.0);
}

TEST(OriginalConfigTest, TellsOurConfigsApart) {
  EXPECT_FALSE(is_original_config(Json::parse(R"({"model": {"type": "vqgan"}})")));
  EXPECT_FALSE(is_original_config(Json::parse(R"({"model": {"target": 3}})")));
  EXPECT_FALSE(is_original_config(Json::array()));
  EXPECT_FALSE(is_original_config(Json::parse(R"({"model": "x"})")));
  EXPECT_TRUE(is_original_config(Json::parse(R"({"model": {"target": "a.B"}})")));
  try {
    model_config_from_original(Json::parse(R"({"model": {"type": "vqgan"}})"), "ours.yaml");
    ADD_FAILURE() << "converted our own config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ours.yaml: not a taming/latent-diffusion config"),
              std::string::npos);
  }
}

const char* kVQ = R"(
model:
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 4
    n_embed: 16
    ddconfig: {double_z: false, z_channels: 4, resolution: 32, in_channels: 3, out_ch: 3, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
)";

// kVQ with `line` added under model.params (or replacing a key's line when `key` is given).
std::string vq_with(const std::string& extra) {
  return std::string(kVQ) + "    " + extra + "\n";
}

// Found by fuzz/fuzz_config: quoting a value that is not UTF-8 in an error message threw
// nlohmann's type_error instead of the lf::Error naming the key.
TEST(OriginalConfigTest, ValuesThatAreNotUtf8AreQuotedInErrors) {
  const Json config = {{"model",
                        {{"target", "ldm.models.autoencoder.AutoencoderKL"},
                         {"params", {{"embed_dim", 4}, {"ddconfig", {{"ch", "3\xff"}}}}}}}};
  try {
    model_config_from_original(config, "x.yaml");
    ADD_FAILURE() << "converted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[original_config] x.yaml: ", 0), 0u) << message;
    EXPECT_NE(message.find("ch: expected an integer, got \"3"), std::string::npos) << message;
  }
}

TEST(OriginalConfigTest, RefusesWhatItCannotImport) {
  expect_config_error(R"(
model:
  target: taming.models.cond_transformer.Net2NetTransformer
  params:
    first_stage_config: {target: taming.models.vqgan.VQModel}
)",
               "model.target is taming.models.cond_transformer.Net2NetTransformer, a transformer "
               "over VQGAN codes, not an autoencoder");
  expect_config_error("model: {target: taming.models.vqgan.GumbelVQ, params: {}}",
               "model.target is taming.models.vqgan.GumbelVQ (supported: ");
  expect_config_error(vq_with("remap: data/remap.npy"),
               "model.params.remap: taming.models.vqgan.VQModel with a remapped codebook");
  expect_config_error(vq_with("lossconfig: {target: taming.modules.losses.segmentation.BCELossWithQuant}"),
               "model.params.lossconfig.target: taming.modules.losses.segmentation."
               "BCELossWithQuant is not supported for this model (expected "
               "VQLPIPSWithDiscriminator or torch.nn.Identity)");
  expect_config_error(vq_with("lossconfig: {target: x.VQLPIPSWithDiscriminator, params: {disc_start: "
                       "1, disc_conditional: true}}"),
               "model.params.lossconfig.params.disc_conditional: a conditional discriminator");
  expect_config_error(vq_with("lossconfig: {target: x.VQLPIPSWithDiscriminator, params: {}}"),
               "model.params.lossconfig.params.disc_start: missing");
  expect_config_error(vq_with("lossconfig: {target: x.VQLPIPSWithDiscriminator, params: {disc_start: "
                       "1, disc_loss: wgan}}"),
               "disc_loss: expected hinge or vanilla, got \"wgan\"");
  expect_config_error(vq_with("lossconfig: {target: x.VQLPIPSWithDiscriminator, params: {disc_start: "
                       "1, pixel_loss: l2}}"),
               "pixel_loss: only l1 is supported");
  expect_config_error(vq_with("lossconfig: {target: x.VQLPIPSWithDiscriminator, params: {disc_start: "
                       "1, wild: 3}}"),
               "model.params.lossconfig.params.wild: unknown key (value 3)");
  expect_config_error(vq_with("temperature_scheduler_config: {}"),
               "model.params.temperature_scheduler_config: unknown key");
  expect_config_error(R"(
model:
  target: taming.models.vqgan.VQModel
  params:
    n_embed: 16
    ddconfig: {double_z: false, z_channels: 4, resolution: 32, in_channels: 3, out_ch: 3, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
)",
               "model.params.embed_dim: missing");
  expect_config_error("model: {target: ldm.models.autoencoder.AutoencoderKL, params: {embed_dim: 4}}",
               "model.params.ddconfig: missing");
  expect_config_error(R"(
model:
  target: ldm.models.autoencoder.AutoencoderKL
  params:
    embed_dim: 4
    ddconfig: {double_z: false, z_channels: 4, resolution: 32, in_channels: 3, out_ch: 3, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: []}
)",
               "model.params.ddconfig.double_z: AutoencoderKL needs true");
  const std::string dd_prefix = R"(
model:
  target: ldm.models.autoencoder.AutoencoderKL
  params:
    embed_dim: 4
    ddconfig: {z_channels: 4, resolution: 32, in_channels: 3, out_ch: 3, ch: 32,
               num_res_blocks: 1, attn_resolutions: [], )";
  expect_config_error(dd_prefix + "ch_mult: [1, 0]}",
               "model.params.ddconfig.ch_mult: expected an "
               "integer >= 1, got 0");
  expect_config_error(dd_prefix + "ch_mult: []}", "ddconfig.ch_mult: expected at least one level");
  expect_config_error(dd_prefix + "ch_mult: two}", "ddconfig.ch_mult: expected a list of integers");
  expect_config_error(dd_prefix + "dropout: high}", "ddconfig.dropout: expected a number, got \"high\"");
  expect_config_error(dd_prefix + "double_z: 1}", "ddconfig.double_z: expected true or false, got 1");
  expect_config_error(dd_prefix + "attn_type: linear}",
               "ddconfig.attn_type: expected vanilla, vanilla-xformers or none");
  expect_config_error(dd_prefix + "use_linear_attn: true}",
               "ddconfig.use_linear_attn: linear attention is not supported");
  expect_config_error(dd_prefix + "z_dim: 3}", "model.params.ddconfig.z_dim: unknown key (value 3)");
  expect_config_error(dd_prefix + "ch: 2.5}", "model.params.ddconfig.ch: expected an integer, got 2.5");
  expect_config_error(R"(
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    scale_factor: 0.18215
    first_stage_config: {target: ldm.models.autoencoder.IdentityFirstStage}
)",
               "model.params.first_stage_config.target is ldm.models.autoencoder."
               "IdentityFirstStage (supported: ");
  expect_config_error(R"(
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params: {scale_factor: -1, first_stage_config: {target: a.AutoencoderKL, params: {}}}
)",
               "model.params.scale_factor: expected a positive number, got -1");
  expect_config_error("model: {target: ldm.models.diffusion.ddpm.LatentDiffusion, params: {}}",
               "model.params.first_stage_config: expected a mapping");
  expect_config_error("model: {target: ldm.models.autoencoder.AutoencoderKL}",
               "model.params: expected a mapping");
  expect_config_error("model: {target: x.LatentDiffusion, params: {first_stage_config: {target: 3}}}",
               "model.params.first_stage_config.target: expected a class name, got 3");
}

}  // namespace
}  // namespace lf
