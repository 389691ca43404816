// The taming/ldm encoder and decoder: original key names, shapes at any multiple of the factor,
// attention placement, and clear errors for impossible configs and inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/state_dict.h"
#include "models/ldm_coder.h"
#include "models/model_test_util.h"

namespace lf {
namespace {

LdmCoderOptions small() {
  return LdmCoderOptions()
      .ch(32)
      .ch_mult({1, 2})
      .num_res_blocks(1)
      .attn_resolutions({8})
      .resolution(16)
      .z_channels(4);
}

TEST(LdmCoder, KeyNamesAreTheOriginalOnes) {
  LdmEncoder encoder(small());
  LdmDecoder decoder(small());
  const auto enc = module_state(*encoder);
  const auto dec = module_state(*decoder);
  for (const char* key :
       {"conv_in.weight", "down.0.block.0.norm1.weight", "down.0.block.0.conv2.bias",
        "down.0.downsample.conv.weight", "down.1.block.0.nin_shortcut.weight",
        "down.1.attn.0.q.weight", "down.1.attn.0.proj_out.bias", "mid.block_1.conv1.weight",
        "mid.attn_1.k.weight", "mid.block_2.norm2.bias", "norm_out.weight", "conv_out.weight"})
    EXPECT_TRUE(enc.count(key)) << "encoder." << key;
  EXPECT_FALSE(enc.count("down.0.attn.0.q.weight"));         // 16 px level: no attention
  EXPECT_FALSE(enc.count("down.1.downsample.conv.weight"));  // last level: no downsample
  EXPECT_EQ(enc.at("conv_out.weight").size(0), 8);           // double_z
  for (const char* key :
       {"conv_in.weight", "mid.attn_1.v.weight", "up.0.block.0.nin_shortcut.weight",
        "up.1.block.1.conv1.weight", "up.1.attn.1.norm.weight", "up.1.upsample.conv.weight",
        "up.0.block.1.conv2.weight", "conv_out.bias"})
    EXPECT_TRUE(dec.count(key)) << "decoder." << key;
  EXPECT_FALSE(dec.count("up.0.upsample.conv.weight"));
  EXPECT_FALSE(dec.count("up.0.attn.0.q.weight"));
  EXPECT_EQ(dec.at("up.1.block.0.conv1.weight").size(1), 64);  // starts at ch * ch_mult[-1]
}

TEST(LdmCoder, RunsOnAnyMultipleOfTheFactor) {
  LdmEncoder encoder(small());
  LdmDecoder decoder(small());
  torch::NoGradGuard no_grad;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{16, 16}, {8, 24}, {32, 6}}) {
    const auto z = encoder(test::images(2, 3, h, w));
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{2, 8, h / 2, w / 2}));
    const auto y = decoder(z.narrow(1, 0, 4));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, h, w}));
  }
}

TEST(LdmCoder, NoAttentionAndNoConvResampling) {
  auto o = small().attn_type("none").resamp_with_conv(false).double_z(false);
  LdmEncoder encoder(o);
  const auto state = module_state(*encoder);
  for (const auto& [key, value] : state) {
    EXPECT_EQ(key.find("attn"), std::string::npos) << key;
    EXPECT_EQ(key.find("downsample"), std::string::npos) << key;
  }
  torch::NoGradGuard no_grad;
  EXPECT_EQ(encoder(test::images(1, 3, 8, 8)).sizes(), (std::vector<int64_t>{1, 4, 4, 4}));
}

TEST(LdmCoder, AttentionChunkingMatchesOneShot) {
  // 72x72 = 5184 positions at batch 1: 27M scores exceed one 16M-element chunk, so the chunked
  // path runs.
  LdmAttnBlock block(32);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 32, 72, 72}) * 0.1;
  const auto chunked = block(x);
  const auto small_part = block(x.narrow(2, 0, 8).narrow(3, 0, 8));  // one-shot path
  EXPECT_EQ(chunked.sizes(), x.sizes());
  // Reference: the same attention written out directly.
  const auto h = block->norm(x);
  const auto q = block->q(h).reshape({1, 32, -1}).transpose(1, 2);
  const auto k = block->k(h).reshape({1, 32, -1});
  const auto v = block->v(h).reshape({1, 32, -1});
  const auto w = torch::softmax(torch::bmm(q, k) / std::sqrt(32.0), -1);
  const auto ref = x + block->proj_out(torch::bmm(v, w.transpose(1, 2)).reshape(x.sizes()));
  EXPECT_LE((chunked - ref).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(small_part.sizes(), (std::vector<int64_t>{1, 32, 8, 8}));
}

TEST(LdmCoder, RejectsImpossibleConfigsAndInputs) {
  test::expect_error([] { LdmEncoder(small().ch(48)); }, "multiple of 32");
  test::expect_error([] { LdmEncoder(small().ch_mult({})); }, "ch_mult");
  test::expect_error([] { LdmEncoder(small().attn_type("linear")); }, "attn_type");
  test::expect_error(
      [] {
        LdmCoderOptions o;
        from_json(Json{{"chh", 3}}, o);
      },
      "unknown option 'chh'");
  LdmEncoder encoder(small());
  test::expect_error([&] { encoder(test::images(1, 3, 15, 16)); }, "multiples of 2");
  test::expect_error([&] { encoder(test::images(1, 1, 16, 16)); }, "[N, 3, H, W]");
  LdmDecoder decoder(small());
  test::expect_error([&] { decoder(torch::zeros({1, 3, 4, 4})); }, "[N, 4, h, w]");
}

}  // namespace
}  // namespace lf
