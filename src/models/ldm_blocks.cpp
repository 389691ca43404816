// taming/ldm encoder-decoder blocks: see ldm_blocks.h.
#include "models/ldm_blocks.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/batched_matmul.h"
#include "models/conv_algorithm.h"
#include "models/upsample_fold.h"

namespace lf {
namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

// Score-matrix elements per attention chunk: 16M floats = 64 MiB.
constexpr int64_t kAttentionChunkElements = int64_t{1} << 24;

}  // namespace

nn::GroupNorm ldm_group_norm(int64_t channels) {
  if (channels <= 0 || channels % 32 != 0)
    fail("ldm_group_norm",
         "expected a channel count that is a positive multiple of 32 (GroupNorm "
         "with 32 groups), got {}",
         channels);
  return nn::GroupNorm(nn::GroupNormOptions(32, channels).eps(1e-6).affine(true));
}

torch::Tensor swish(const torch::Tensor& x) {
  return torch::silu(x);  // one fused pass; the reference's x * sigmoid(x) makes two
}

LdmResnetBlockImpl::LdmResnetBlockImpl(int64_t in_channels, int64_t out_channels,
                                       double dropout_p) {
  norm1 = register_module("norm1", ldm_group_norm(in_channels));
  conv1 = register_module("conv1", conv(in_channels, out_channels, 3, 1, 1));
  norm2 = register_module("norm2", ldm_group_norm(out_channels));
  dropout = register_module("dropout", nn::Dropout(dropout_p));
  conv2 = register_module("conv2", conv(out_channels, out_channels, 3, 1, 1));
  if (in_channels != out_channels)
    nin_shortcut = register_module("nin_shortcut", conv(in_channels, out_channels, 1, 1, 0));
}

torch::Tensor LdmResnetBlockImpl::forward(const torch::Tensor& x) {
  // Without autograd, swish overwrites the fresh GroupNorm output instead of allocating another
  // activation; the 3x3 convs go through conv_forward (Winograd where it wins, see
  // conv_algorithm.h).
  const bool inference = !torch::GradMode::is_enabled();
  const auto act = [&](torch::Tensor t) { return inference ? torch::silu_(t) : swish(t); };
  auto h = conv_forward(*conv1, act(norm1(x)));      // [N, out, H, W]
  h = conv_forward(*conv2, dropout(act(norm2(h))));  // [N, out, H, W]
  // Adding into the conv output is safe under autograd too: conv's backward does not need it.
  return h.add_(nin_shortcut ? nin_shortcut(x) : x);
}

LdmAttnBlockImpl::LdmAttnBlockImpl(int64_t channels) {
  norm = register_module("norm", ldm_group_norm(channels));
  q = register_module("q", conv(channels, channels, 1, 1, 0));
  k = register_module("k", conv(channels, channels, 1, 1, 0));
  v = register_module("v", conv(channels, channels, 1, 1, 0));
  proj_out = register_module("proj_out", conv(channels, channels, 1, 1, 0));
}

torch::Tensor LdmAttnBlockImpl::forward(const torch::Tensor& x) {
  const auto n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), positions = h * w;
  const auto normed = norm(x);
  // Scaling q once is cheaper than scaling every score; the reference scales the scores, which
  // differs only in float rounding.
  const auto queries = (q(normed) * (1.0 / std::sqrt(static_cast<double>(c))))
                           .reshape({n, c, positions})
                           .transpose(1, 2);
  const auto keys = k(normed).reshape({n, c, positions});                    // [N, C, HW]
  const auto values = v(normed).reshape({n, c, positions}).transpose(1, 2);  // [N, HW, C]
  const int64_t chunk = std::clamp<int64_t>(
      kAttentionChunkElements / std::max<int64_t>(1, n * positions), 1, positions);
  torch::Tensor out;
  if (chunk == positions) {
    out = batched_matmul(torch::softmax(batched_matmul(queries, keys), -1), values);
  } else {
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < positions; start += chunk) {
      const auto q_chunk = queries.narrow(1, start, std::min(chunk, positions - start));
      parts.push_back(batched_matmul(torch::softmax(batched_matmul(q_chunk, keys), -1), values));
    }
    out = torch::cat(parts, 1);
  }
  return x + proj_out(out.transpose(1, 2).reshape({n, c, h, w}));
}

LdmDownsampleImpl::LdmDownsampleImpl(int64_t channels, bool with_conv) {
  if (with_conv) conv = register_module("conv", lf::conv(channels, channels, 3, 2, 0));
}

torch::Tensor LdmDownsampleImpl::forward(const torch::Tensor& x) {
  if (!conv) return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
  return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
}

LdmUpsampleImpl::LdmUpsampleImpl(int64_t channels, bool with_conv) {
  if (with_conv) conv = register_module("conv", lf::conv(channels, channels, 3, 1, 1));
}

torch::Tensor LdmUpsampleImpl::forward(const torch::Tensor& x) {
  if (conv) return upsample_conv_folded(x, conv->weight, conv->bias);  // see upsample_fold.h
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kNearest));
}

}  // namespace lf
