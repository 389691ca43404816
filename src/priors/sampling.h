// Drawing one token per row from logits: temperature, top-k and top-p (nucleus) filtering, and a
// draw from a caller-owned CPU generator, so that a seed fixes the samples on any device.
#pragma once

#include <torch/torch.h>

namespace lf {

struct SamplingOptions {
  double temperature = 1.0;  // > 0; logits are divided by it
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // keep the smallest set whose probability reaches p; 1 = all
  bool kv_cache = true;      // transformer: reuse keys and values of earlier positions
  // Transformer sliding window (code cells); 0 = the training grid. Grids larger than the
  // training grid are always sampled with a window.
  int64_t window_h = 0;
  int64_t window_w = 0;

  void validate(const char* where) const;  // throws lf::Error on out-of-range values
};

// logits: [N, V] -> probabilities [N, V] float32 after temperature, top-k and top-p filtering.
torch::Tensor filtered_probabilities(const torch::Tensor& logits, const SamplingOptions& options);
// logits: [N, V] -> tokens [N] int64 (on the logits' device), drawn with `generator` (CPU).
torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            at::Generator& generator);
// A CPU generator seeded with `seed`.
at::Generator make_generator(uint64_t seed);

}  // namespace lf
