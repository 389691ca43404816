// Drawing one token per row from logits: temperature, top-k and top-p (nucleus) filtering, and a
// draw from a caller-owned CPU generator, so that a seed fixes the samples on any device.
#pragma once

#include <torch/torch.h>

#include <functional>

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
  // Image completion: the first `given_cells` cells of every map, in raster order, are copied from
  // `given` ([1 or N, h, w] int64, the grid being sampled) instead of drawn.
  torch::Tensor given;
  int64_t given_cells = 0;
  // Called after every `progress_every` cells (0: never) and after the last one with the maps so
  // far [N, h, w] (cells not generated yet hold -1) and the number of cells done; it may throw to
  // stop sampling.
  std::function<void(const torch::Tensor& codes, int64_t done)> on_progress;
  int64_t progress_every = 0;

  void validate(const char* where) const;  // throws lf::Error on out-of-range values
  // Checks `given` against a sampling of n maps of h x w cells with K codes.
  void check_given(int64_t n, int64_t h, int64_t w, int64_t num_codes, const char* where) const;
  // The tokens [N] of cell `cell` (raster order, grid width w): the given ones when the cell is
  // given, else drawn from logits [N, V].
  torch::Tensor cell_tokens(const std::function<torch::Tensor()>& logits, int64_t cell, int64_t w,
                            at::Generator& generator) const;
  bool is_given(int64_t cell) const { return given.defined() && cell < given_cells; }
  // Calls on_progress when `done` cells are a multiple of progress_every or all of them.
  void report(const std::function<torch::Tensor()>& codes, int64_t done, int64_t total) const;
};

// logits: [N, V] -> probabilities [N, V] float32 after temperature, top-k and top-p filtering.
torch::Tensor filtered_probabilities(const torch::Tensor& logits, const SamplingOptions& options);
// logits: [N, V] -> tokens [N] int64 (on the logits' device), drawn with `generator` (CPU).
torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            at::Generator& generator);
// A CPU generator seeded with `seed`.
at::Generator make_generator(uint64_t seed);

}  // namespace lf
