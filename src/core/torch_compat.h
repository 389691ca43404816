// The one place where LibTorch version differences (Debian's 1.13 vs the 2.x inside PyTorch) live.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define LF_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||     \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace lf::compat {

inline std::string torch_version() {
  return TORCH_VERSION;
}

// Fused attention exists from 2.0; 1.13 gets the plain softmax(q k^T / sqrt(d)) v.
// q, k, v: [B, heads, L, d] -> [B, heads, Lq, d]
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, bool is_causal = false) {
#if LF_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, is_causal);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (is_causal) {
    const auto lq = q.size(-2), lk = k.size(-2);
    auto mask = torch::ones({lq, lk}, q.options().dtype(torch::kBool)).triu(lk - lq + 1);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

}  // namespace lf::compat
