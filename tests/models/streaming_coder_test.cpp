// Streaming encode and decode against the modules' own forward: equal to float rounding for
// random and structured inputs, odd sizes, attention at several levels or none, bands of 4 rows,
// and float16 storage to its own precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/ldm_coder.h"
#include "models/model_test_util.h"
#include "models/streaming_coder.h"

namespace lf {
namespace {

namespace F = torch::nn::functional;

// Weights like the fixtures' (conv N(0, 1/fan_in), biases N(0, 0.1), GroupNorm N(1, 0.3) and
// N(0, 0.2)) so every GroupNorm's affine part matters.
void randomise(torch::nn::Module& module, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool norm = name.find("norm") != std::string::npos;
    if (name.size() > 4 && name.substr(name.size() - 4) == "bias")
      p.normal_(0, norm ? 0.2 : 0.1);
    else if (norm)
      p.normal_(1, 0.3);
    else
      p.normal_(0, 1.0 / std::sqrt(static_cast<double>(p[0].numel())));
  }
}

// Large bright and dark regions plus a gradient: per-tile statistics get this badly wrong.
torch::Tensor structured(int64_t n, int64_t c, int64_t h, int64_t w) {
  auto x = torch::zeros({n, c, h, w});
  x.narrow(2, 0, h / 2).narrow(3, 0, w / 3 + 1).fill_(3.0);
  x.narrow(2, h / 2, h - h / 2).narrow(3, w / 2, w - w / 2).fill_(-2.5);
  x += torch::linspace(-1, 1, w).reshape({1, 1, 1, w}) + 0.1 * torch::randn({n, c, h, w});
  return x;
}

// max |a - b| / (max |b| + 1e-12)
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return ((a - b).abs().max() / (b.abs().max() + 1e-12)).item<double>();
}

LdmCoderOptions config(std::vector<int64_t> attn_resolutions, std::string attn_type = "vanilla") {
  return LdmCoderOptions()
      .ch(32)
      .ch_mult({1, 2, 1})
      .num_res_blocks(1)
      .resolution(16)
      .z_channels(3)
      .attn_resolutions(std::move(attn_resolutions))
      .attn_type(std::move(attn_type));
}

StreamingOptions four_row_bands() {
  return StreamingOptions().band_bytes(1);
}

TEST(StreamingCoder, DecodeEqualsUntiledInFloat64) {
  // Attention in the middle only; in a coarse level too; none at all (then conv_in streams too).
  for (const auto& o : {config({}), config({4}), config({}, "none")}) {
    LdmDecoder decoder(o);
    randomise(*decoder, 1);
    decoder->to(torch::kDouble);
    decoder->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(2);
    for (const auto& z :
         {torch::randn({2, 3, 5, 7}, torch::kDouble), structured(1, 3, 9, 6).to(torch::kDouble)}) {
      const auto full = decoder->forward(z);
      const auto streamed = streamed_decode(*decoder, z, four_row_bands());
      EXPECT_LT(relative_error(streamed, full), 1e-11) << o.attn_type() << " " << z.sizes();
      const auto recomputed =
          streamed_decode(*decoder, z, four_row_bands().recompute_full_resolution(true));
      EXPECT_LT(relative_error(recomputed, full), 1e-11) << o.attn_type() << " " << z.sizes();
    }
  }
}

TEST(StreamingCoder, EncodeEqualsUntiledInFloat64) {
  for (const auto& o : {config({}), config({8}), config({}, "none").resamp_with_conv(false)}) {
    LdmEncoder encoder(o);
    randomise(*encoder, 3);
    encoder->to(torch::kDouble);
    encoder->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(4);
    for (const auto& x : {torch::rand({2, 3, 20, 12}, torch::kDouble) * 2 - 1,
                          structured(1, 3, 36, 28).to(torch::kDouble) / 3}) {
      const auto full = encoder->forward(x);
      const auto streamed = streamed_encode(*encoder, x, four_row_bands());
      EXPECT_LT(relative_error(streamed, full), 1e-11) << x.sizes();
      const auto recomputed =
          streamed_encode(*encoder, x, four_row_bands().recompute_full_resolution(true));
      EXPECT_LT(relative_error(recomputed, full), 1e-11) << x.sizes();
    }
  }
}

TEST(StreamingCoder, Float32MatchesToRoundOffAndHalfStorageToItsPrecision) {
  LdmDecoder decoder(config({}));
  randomise(*decoder, 5);
  decoder->eval();
  torch::NoGradGuard no_grad;
  const auto z = structured(1, 3, 12, 10);
  const auto full = decoder->forward(z);
  const double fp32 = relative_error(streamed_decode(*decoder, z, four_row_bands()), full);
  const double fp16 =
      relative_error(streamed_decode(*decoder, z, four_row_bands().half_storage(true)), full);
  EXPECT_LT(fp32, 1e-4);
  EXPECT_LT(fp16, 2e-2);
  EXPECT_GT(fp16, fp32);  // the stored maps really are float16
  // One band per step gives the same result as many.
  const auto one_band =
      streamed_decode(*decoder, z, StreamingOptions().band_bytes(int64_t{1} << 40));
  EXPECT_LT(relative_error(one_band, full), 1e-4);
}

TEST(StreamingCoder, HalfStorageOverflowIsAnError) {
  LdmDecoder decoder(config({}, "none"));
  randomise(*decoder, 6);
  decoder->eval();
  torch::NoGradGuard no_grad;
  decoder->conv_in->bias.fill_(1e6);  // mid.block_1's stored output is about 1e6
  test::expect_error(
      [&] {
        streamed_decode(*decoder, torch::randn({1, 3, 4, 4}), four_row_bands().half_storage(true));
      },
      "float16");
}

TEST(StreamingCoder, RejectsBadInputs) {
  LdmDecoder decoder(config({}));
  LdmEncoder encoder(config({}));
  test::expect_error(
      [&] {
        streamed_decode(*decoder, torch::randn({1, 4, 4, 4}));
      },
      "expected latents [N, 3, h, w]");
  test::expect_error(
      [&] {
        streamed_encode(*encoder, torch::randn({1, 3, 10, 8}));
      },
      "multiples of 4");
  test::expect_error(
      [&] {
        streamed_decode(*decoder, torch::randn({1, 3, 4, 4}), StreamingOptions().band_bytes(0));
      },
      "band_bytes");
}

TEST(StreamingCoder, MemoryEstimateStreamsBelowUntiled) {
  LdmDecoder decoder{LdmCoderOptions()};                              // SD 1.x shapes
  const auto m = estimate_decode_memory(*decoder, {1, 4, 128, 128});  // 1024 px
  // The largest untiled map is 256 channels at 1024^2 (1 GiB); streamed keeps 128 channels.
  EXPECT_GT(m.untiled, int64_t{4} << 30);
  EXPECT_LT(m.streamed, int64_t{800} << 20);
  EXPECT_LT(m.streamed_half, m.streamed);
  // 2048 px: the 128-channel full-resolution maps (2 GiB each) are never stored; the 256-channel
  // map before them is, in float16 (512 MiB), and the 3-channel output (48 MiB).
  const auto big = estimate_decode_memory(*decoder, {1, 4, 256, 256});
  EXPECT_LT(big.streamed_recompute, big.streamed_half);
  EXPECT_GT(big.streamed_recompute, int64_t{560} << 20);
  EXPECT_LT(big.streamed_recompute, int64_t{1100} << 20);
  LdmEncoder encoder{LdmCoderOptions()};
  const auto e = estimate_encode_memory(*encoder, {1, 3, 1024, 1024});
  EXPECT_LT(e.streamed, e.untiled);
  EXPECT_LT(e.streamed_recompute, e.streamed_half);
}

}  // namespace
}  // namespace lf
