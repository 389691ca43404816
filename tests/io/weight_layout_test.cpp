// Weight layouts: native files pass through, full SD checkpoints lose their prefix and other
// models, diffusers names map back to the original ones (checked against an independent renaming
// in scripts/make_import_fixtures.py and a hand-written table here), and every unclear file fails.
#include "io/weight_layout.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace lf {
namespace {

std::string layout_fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/import/" + name;
}

void expect_layout_error(const TensorMap& file, const std::string& expected) {
  try {
    to_native_layout(file, "w.safetensors");
    ADD_FAILURE() << "mapped; expected an error containing: " << expected;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[weight_layout] w.safetensors", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "expected '" << expected << "' in: " << message;
  }
}

void expect_same_tensors(const TensorMap& expected, const TensorMap& actual) {
  std::vector<std::string> a, b;
  for (const auto& kv : expected) a.push_back(kv.first);
  for (const auto& kv : actual) b.push_back(kv.first);
  ASSERT_EQ(a, b);
  for (const auto& [key, t] : expected) {
    SCOPED_TRACE(key);
    EXPECT_EQ(actual.at(key).sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(actual.at(key), t));
  }
}

torch::Tensor filled(std::vector<int64_t> shape, float v) {
  return torch::full(shape, v);
}

TEST(WeightLayoutTest, NativeKeysPassThroughAndOthersAreIgnored) {
  const auto w = filled({4, 3, 3, 3}, 1);
  const TensorMap file = {{"encoder.conv_in.weight", w},
                          {"encoder.down.0.block.0.norm1.weight", filled({4}, 2)},
                          {"quantize.embedding.weight", filled({8, 4}, 3)},
                          {"loss.discriminator.main.0.weight", filled({2}, 4)},
                          {"model_ema.decay", filled({}, 5)}};
  const NativeWeights out = to_native_layout(file, "w.safetensors");
  EXPECT_EQ(out.layout, "native");
  EXPECT_EQ(out.tensors.size(), 4u);
  EXPECT_EQ(out.tensors.at("encoder.conv_in.weight").data_ptr(), w.data_ptr());  // not copied
  EXPECT_EQ(out.ignored, std::vector<std::string>{"model_ema.decay"});
}

TEST(WeightLayoutTest, FullStableDiffusionCheckpointKeepsTheFirstStage) {
  const TensorMap file = {{"first_stage_model.encoder.conv_in.weight", filled({4, 3, 3, 3}, 1)},
                          {"first_stage_model.decoder.up.0.block.0.conv1.bias", filled({4}, 2)},
                          {"first_stage_model.post_quant_conv.bias", filled({4}, 3)},
                          {"model.diffusion_model.input_blocks.0.0.weight", filled({2}, 4)},
                          {"cond_stage_model.transformer.x", filled({2}, 5)},
                          {"model_ema.num_updates", filled({}, 6)}};
  const NativeWeights out = to_native_layout(file, "w.safetensors");
  EXPECT_EQ(out.layout, "first_stage_model");
  expect_same_tensors({{"encoder.conv_in.weight", filled({4, 3, 3, 3}, 1)},
                       {"decoder.up.0.block.0.conv1.bias", filled({4}, 2)},
                       {"post_quant_conv.bias", filled({4}, 3)}},
                      out.tensors);
  EXPECT_EQ(out.ignored, (std::vector<std::string>{"cond_stage_model.transformer.x",
                                                   "model.diffusion_model.input_blocks.0.0.weight",
                                                   "model_ema.num_updates"}));
}

// The fixture: a tiny VQ autoencoder (attention at every level) renamed the way diffusers'
// convert_ldm_vae_checkpoint renames, by Python code independent of ours.
TEST(WeightLayoutTest, DiffusersFixtureMapsToTheOriginalNames) {
  const NativeWeights out =
      to_native_layout(load_safetensors(layout_fixture("diffusers_vae.safetensors")), "fixture");
  EXPECT_EQ(out.layout, "diffusers");
  EXPECT_TRUE(out.ignored.empty());
  const TensorMap native = load_safetensors(layout_fixture("diffusers_vae_native.safetensors"));
  expect_same_tensors(native, out.tensors);
  EXPECT_EQ(out.tensors.at("decoder.up.1.attn.0.q.weight").dim(), 4);
}

// A hand-written table (diffusers name -> original name) for a model with three levels, two
// resnets, attention only in the middle, and the older diffusers attention names.
TEST(WeightLayoutTest, DiffusersRoundTripByAnIndependentTable) {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"encoder.conv_in.weight", "encoder.conv_in.weight"},
      {"encoder.down_blocks.0.resnets.0.norm1.weight", "encoder.down.0.block.0.norm1.weight"},
      {"encoder.down_blocks.0.resnets.1.conv2.bias", "encoder.down.0.block.1.conv2.bias"},
      {"encoder.down_blocks.0.downsamplers.0.conv.weight", "encoder.down.0.downsample.conv.weight"},
      {"encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
       "encoder.down.1.block.0.nin_shortcut.weight"},
      {"encoder.down_blocks.1.downsamplers.0.conv.bias", "encoder.down.1.downsample.conv.bias"},
      {"encoder.down_blocks.2.resnets.1.norm2.bias", "encoder.down.2.block.1.norm2.bias"},
      {"encoder.mid_block.resnets.0.conv1.weight", "encoder.mid.block_1.conv1.weight"},
      {"encoder.mid_block.resnets.1.conv1.weight", "encoder.mid.block_2.conv1.weight"},
      {"encoder.mid_block.attentions.0.group_norm.weight", "encoder.mid.attn_1.norm.weight"},
      {"encoder.mid_block.attentions.0.query.weight", "encoder.mid.attn_1.q.weight"},
      {"encoder.mid_block.attentions.0.key.bias", "encoder.mid.attn_1.k.bias"},
      {"encoder.mid_block.attentions.0.value.weight", "encoder.mid.attn_1.v.weight"},
      {"encoder.mid_block.attentions.0.proj_attn.weight", "encoder.mid.attn_1.proj_out.weight"},
      {"encoder.conv_norm_out.bias", "encoder.norm_out.bias"},
      {"encoder.conv_out.bias", "encoder.conv_out.bias"},
      {"quant_conv.weight", "quant_conv.weight"},
      {"post_quant_conv.bias", "post_quant_conv.bias"},
      {"decoder.conv_in.bias", "decoder.conv_in.bias"},
      {"decoder.mid_block.attentions.0.to_q.weight", "decoder.mid.attn_1.q.weight"},
      {"decoder.mid_block.attentions.0.to_out.0.bias", "decoder.mid.attn_1.proj_out.bias"},
      {"decoder.up_blocks.0.resnets.2.conv1.weight", "decoder.up.2.block.2.conv1.weight"},
      {"decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up.2.upsample.conv.weight"},
      {"decoder.up_blocks.1.resnets.0.conv_shortcut.bias",
       "decoder.up.1.block.0.nin_shortcut.bias"},
      {"decoder.up_blocks.1.upsamplers.0.conv.bias", "decoder.up.1.upsample.conv.bias"},
      {"decoder.up_blocks.2.resnets.1.norm1.weight", "decoder.up.0.block.1.norm1.weight"},
      {"decoder.conv_norm_out.weight", "decoder.norm_out.weight"},
      {"decoder.conv_out.weight", "decoder.conv_out.weight"},
  };
  TensorMap native, diffusers;
  float v = 0;
  for (const auto& [theirs, ours] : table) {
    const bool projection = ours.find("attn_1.") != std::string::npos &&
                            ours.find(".weight") != std::string::npos &&
                            ours.find(".norm.") == std::string::npos;
    const auto t = torch::arange(9, torch::kFloat).reshape({3, 3}) + (v += 10);
    native[ours] = projection ? t.reshape({3, 3, 1, 1}) : t;
    // diffusers keeps linear weights [C, C]; its older files kept proj_attn as [C, C, 1].
    const bool conv1d = theirs.find("proj_attn") != std::string::npos;
    diffusers[theirs] = projection ? (conv1d ? t.reshape({3, 3, 1}) : t) : t;
  }
  const NativeWeights out = to_native_layout(diffusers, "table");
  EXPECT_EQ(out.layout, "diffusers");
  expect_same_tensors(native, out.tensors);
}

TEST(WeightLayoutTest, DiffusersNamesInsideAStableDiffusionCheckpoint) {
  const TensorMap file = {
      {"first_stage_model.decoder.up_blocks.0.upsamplers.0.conv.weight", filled({2}, 1)},
      {"first_stage_model.decoder.up_blocks.1.resnets.0.norm1.weight", filled({2}, 2)},
      {"model.diffusion_model.out.2.bias", filled({2}, 3)}};
  const NativeWeights out = to_native_layout(file, "w");
  EXPECT_EQ(out.layout, "first_stage_model");
  expect_same_tensors({{"decoder.up.1.upsample.conv.weight", filled({2}, 1)},
                       {"decoder.up.0.block.0.norm1.weight", filled({2}, 2)}},
                      out.tensors);
}

TEST(WeightLayoutTest, RefusesUnclearFiles) {
  const auto t = filled({2}, 1);
  expect_layout_error({{"encoder.down.0.block.0.norm1.weight", t},
                {"decoder.up_blocks.0.resnets.0.norm1.weight", t}},
               "mixes diffusers names ('decoder.up_blocks.0.resnets.0.norm1.weight') with "
               "original names ('encoder.down.0.block.0.norm1.weight')");
  expect_layout_error({{"decoder.up_blocks.0.resnets.0.time_emb_proj.weight", t}},
               "diffusers key 'decoder.up_blocks.0.resnets.0.time_emb_proj.weight' has no "
               "counterpart");
  expect_layout_error({{"encoder.down_blocks.0.resnets.0.norm1.weight", t}, {"vae_scale", t}},
               "diffusers key 'vae_scale'");
  expect_layout_error({{"encoder.mid_block.attentions.1.to_q.weight", t}}, "has no counterpart");
  expect_layout_error({{"encoder.down_blocks.0.upsamplers.0.conv.weight", t}}, "has no counterpart");
  expect_layout_error({{"encoder.mid_block.attentions.0.to_q.weight", filled({3, 3}, 1)},
                {"encoder.mid_block.attentions.0.query.weight", filled({3, 3}, 1)}},
               "both map to 'encoder.mid.attn_1.q.weight'");
  expect_layout_error({{"encoder.mid_block.attentions.0.to_q.weight", filled({3, 3, 3}, 1)}},
               "expected an attention weight [C, C] or [C, C, 1, 1], got [3, 3, 3]");
  expect_layout_error({{"fc.weight", t}, {"fc.bias", t}},
               "no autoencoder weights recognised (expected encoder.down.* as in taming/ldm");
  expect_layout_error({}, "0 keys, e.g. none");
  expect_layout_error({{"first_stage_model.encoder.down.0.block.0.norm1.weight", t},
                {"encoder.down.0.block.0.norm1.weight", t}},
               "both first_stage_model.* keys and autoencoder keys without the prefix");
  expect_layout_error({{"first_stage_model.transformer.x", t}}, "no autoencoder weights recognised");
}

}  // namespace
}  // namespace lf
