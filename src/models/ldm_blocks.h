// The building blocks of the taming-transformers / latent-diffusion encoder and decoder, with the
// original module names so checkpoints load key for key: ResnetBlock (GroupNorm(32, eps 1e-6),
// swish, optional 1x1 shortcut), AttnBlock (single-head spatial self-attention with 1x1 q/k/v),
// Downsample (asymmetric zero pad + stride-2 conv) and Upsample (nearest x2 + conv).
#pragma once

#include <torch/torch.h>

namespace lf {

// GroupNorm(32 groups, eps 1e-6, affine) as taming's Normalize; channels must be a multiple of 32.
torch::nn::GroupNorm ldm_group_norm(int64_t channels);
// x * sigmoid(x)
torch::Tensor swish(const torch::Tensor& x);

// norm1 -> swish -> conv1 -> norm2 -> swish -> dropout -> conv2, plus x (through nin_shortcut, a
// 1x1 conv, when the channel count changes). x: [N, in, H, W] -> [N, out, H, W]
class LdmResnetBlockImpl : public torch::nn::Module {
 public:
  LdmResnetBlockImpl(int64_t in_channels, int64_t out_channels, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv2d nin_shortcut{nullptr};  // only when in != out
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(LdmResnetBlock);

// x + proj_out(attention(q, k, v)) over all H*W positions, one head of C channels, scale C^-1/2.
// Queries are processed in chunks so the score matrix stays bounded (a 1024 px SD decode has 16384
// positions in its middle block: 1 GiB of scores in one piece). x: [N, C, H, W] -> same.
class LdmAttnBlockImpl : public torch::nn::Module {
 public:
  explicit LdmAttnBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(LdmAttnBlock);

// with_conv: pad (0, 1, 0, 1) with zeros, 3x3 conv stride 2; else 2x2 average pooling.
// x: [N, C, H, W] -> [N, C, H/2, W/2]
class LdmDownsampleImpl : public torch::nn::Module {
 public:
  LdmDownsampleImpl(int64_t channels, bool with_conv);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};  // only with_conv
};
TORCH_MODULE(LdmDownsample);

// Nearest-neighbour x2, then (with_conv) a 3x3 conv. x: [N, C, H, W] -> [N, C, 2H, 2W]
class LdmUpsampleImpl : public torch::nn::Module {
 public:
  LdmUpsampleImpl(int64_t channels, bool with_conv);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};  // only with_conv
};
TORCH_MODULE(LdmUpsample);

}  // namespace lf
