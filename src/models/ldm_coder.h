// The taming-transformers / latent-diffusion Encoder and Decoder (the VQGAN's and the Stable
// Diffusion autoencoder's), configured by the original "ddconfig" and named like the original
// modules: encoder.down.1.block.0.nin_shortcut.weight, decoder.mid.attn_1.q.weight, ...
// Attention sits at the levels whose nominal resolution (from `resolution`) is in
// attn_resolutions, as in the reference; the networks run on any input whose sides are multiples
// of the downsampling factor.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "io/config.h"
#include "models/ldm_blocks.h"

namespace lf {

// taming/ldm ddconfig; JSON keys are the original names. Defaults: Stable Diffusion 1.x.
struct LdmCoderOptions {
  TORCH_ARG(int64_t, ch) = 128;
  TORCH_ARG(int64_t, out_ch) = 3;
  TORCH_ARG(std::vector<int64_t>, ch_mult) = std::vector<int64_t>{1, 2, 4, 4};
  TORCH_ARG(int64_t, num_res_blocks) = 2;
  TORCH_ARG(std::vector<int64_t>, attn_resolutions) = std::vector<int64_t>{};
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, resamp_with_conv) = true;
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, resolution) = 256;  // nominal: places the attention blocks
  TORCH_ARG(int64_t, z_channels) = 4;
  TORCH_ARG(bool, double_z) = true;       // encoder emits 2 * z_channels (mean and logvar)
  TORCH_ARG(bool, give_pre_end) = false;  // decoder returns the features before norm_out
  TORCH_ARG(bool, tanh_out) = false;
  TORCH_ARG(std::string, attn_type) = "vanilla";  // "vanilla" | "none"
};
void to_json(Json& json, const LdmCoderOptions& options);
// Present keys only; unknown keys throw. Keys of the original configs that do not change the
// network ("use_linear_attn": false) are accepted.
void from_json(const Json& json, LdmCoderOptions& options);
// Throws "[where] ..." for values the networks cannot be built from.
void check_ldm_coder_options(const LdmCoderOptions& options, const char* where);

// One resolution level of the encoder ("down.i") or decoder ("up.i").
class LdmLevelImpl : public torch::nn::Module {
 public:
  torch::nn::ModuleList block{nullptr}, attn{nullptr};
  std::vector<LdmResnetBlock> blocks;
  std::vector<LdmAttnBlock> attns;  // empty, or one per block
  LdmDownsample downsample{nullptr};
  LdmUpsample upsample{nullptr};
};
TORCH_MODULE(LdmLevel);

// The middle of both networks ("mid"): block_1, attn_1, block_2.
class LdmMidImpl : public torch::nn::Module {
 public:
  LdmMidImpl(int64_t channels, double dropout, bool attention);
  torch::Tensor forward(const torch::Tensor& x);

  LdmResnetBlock block_1{nullptr}, block_2{nullptr};
  LdmAttnBlock attn_1{nullptr};  // absent with attn_type "none"
};
TORCH_MODULE(LdmMid);

// x: [N, in_channels, H, W] -> [N, (double_z ? 2 : 1) * z_channels, H/f, W/f], f = 2^(levels-1)
class LdmEncoderImpl : public torch::nn::Module {
 public:
  explicit LdmEncoderImpl(LdmCoderOptions options);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t factor() const { return int64_t{1} << (options_.ch_mult().size() - 1); }
  const LdmCoderOptions& options() const { return options_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down{nullptr};
  LdmMid mid{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};

 private:
  LdmCoderOptions options_;
  std::vector<LdmLevel> levels_;
};
TORCH_MODULE(LdmEncoder);

// z: [N, z_channels, h, w] -> [N, out_ch, h*f, w*f]
class LdmDecoderImpl : public torch::nn::Module {
 public:
  explicit LdmDecoderImpl(LdmCoderOptions options);
  torch::Tensor forward(const torch::Tensor& z);
  int64_t factor() const { return int64_t{1} << (options_.ch_mult().size() - 1); }
  const LdmCoderOptions& options() const { return options_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  LdmMid mid{nullptr};
  torch::nn::ModuleList up{nullptr};  // "up.0" is the finest level, as in the reference
  torch::nn::GroupNorm norm_out{nullptr};

 private:
  LdmCoderOptions options_;
  std::vector<LdmLevel> levels_;  // index = level (0 finest)
};
TORCH_MODULE(LdmDecoder);

}  // namespace lf
