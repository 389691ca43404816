// Temperature / top-k / top-p filtering and seeded token draws.
#include "priors/sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace lf {

void SamplingOptions::validate(const char* where) const {
  if (!(temperature > 0)) fail(where, "temperature: expected > 0, got {}", temperature);
  if (top_k < 0) fail(where, "top_k: expected >= 0 (0 = off), got {}", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail(where, "top_p: expected in (0, 1], got {}", top_p);
  if (window_h < 0 || window_w < 0)
    fail(where, "window: expected sizes >= 0 (0 = the training grid), got {}x{}", window_h,
         window_w);
}

void SamplingOptions::check_given(int64_t n, int64_t h, int64_t w, int64_t num_codes,
                                  const char* where) const {
  if (!given.defined()) return;
  if (given.dim() != 3 || given.scalar_type() != torch::kInt64 ||
      (given.size(0) != 1 && given.size(0) != n) || given.size(1) != h || given.size(2) != w)
    fail(where, "given codes: expected int64 [1 or {}, {}, {}], got {} {}", n, h, w,
         c10::toString(given.scalar_type()), shape_str(given.sizes()));
  if (given_cells < 0 || given_cells > h * w)
    fail(where, "given cells: expected 0..{}, got {}", h * w, given_cells);
  const auto kept = given.reshape({given.size(0), -1}).slice(1, 0, given_cells);
  if (kept.numel() > 0 &&
      (kept.min().item<int64_t>() < 0 || kept.max().item<int64_t>() >= num_codes))
    fail(where, "given codes: expected values in [0, {})", num_codes);
}

torch::Tensor SamplingOptions::cell_tokens(const std::function<torch::Tensor()>& logits,
                                           int64_t cell, int64_t w,
                                           at::Generator& generator) const {
  if (!is_given(cell)) return sample_tokens(logits(), *this, generator);
  return given.select(1, cell / w).select(1, cell % w);
}

void SamplingOptions::report(const std::function<torch::Tensor()>& codes, int64_t done,
                             int64_t total) const {
  if (!on_progress || progress_every <= 0) return;
  if (done % progress_every == 0 || done == total) on_progress(codes(), done);
}

torch::Tensor filtered_probabilities(const torch::Tensor& logits, const SamplingOptions& o) {
  if (logits.dim() != 2)
    fail("sample_tokens", "expected logits [N, V], got {}", shape_str(logits.sizes()));
  auto scaled = logits.to(torch::kFloat32) / o.temperature;
  const int64_t vocab = scaled.size(1);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < vocab) {
    // Everything below the k-th largest logit goes (ties with it stay, as in taming/minGPT).
    const auto kth = std::get<0>(scaled.topk(o.top_k, 1)).narrow(1, o.top_k - 1, 1);
    scaled = scaled.masked_fill(scaled < kth, neg_inf);
  }
  auto probs = torch::softmax(scaled, 1);
  if (o.top_p < 1) {
    // Keep the most likely tokens until their mass reaches top_p (the token that crosses it too).
    const auto [sorted, order] = probs.sort(1, /*descending=*/true);
    const auto mass_before = sorted.cumsum(1) - sorted;
    const auto drop_sorted = mass_before >= o.top_p;
    const auto drop = torch::zeros_like(drop_sorted).scatter(1, order, drop_sorted);
    probs = probs.masked_fill(drop, 0.0);
    probs = probs / probs.sum(1, /*keepdim=*/true);
  }
  return probs;
}

torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            at::Generator& generator) {
  const auto probs = filtered_probabilities(logits, options).to(torch::kCPU);
  const auto tokens = torch::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(1);
  return tokens.to(logits.device());
}

at::Generator make_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

}  // namespace lf
