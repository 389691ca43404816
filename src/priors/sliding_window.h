// Sampling code grids larger than a prior's training grid: each position is predicted from the
// already generated positions of a window centred on it as far as the borders allow (taming's
// sliding-window sampling), in raster order over the whole grid.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "priors/sampling.h"

namespace lf {

// A window of the grid and the target cell inside it.
struct Window {
  int64_t top = 0, left = 0;                            // in grid cells
  int64_t height = 0, width = 0;                        // window size
  int64_t row = 0, col = 0;                             // the target, relative to (top, left)
  int64_t target() const { return row * width + col; }  // its index in window raster order
};

// The (wh, ww) window around cell (i, j) of an (h, w) grid: centred, shifted inside the borders.
Window window_around(int64_t i, int64_t j, int64_t h, int64_t w, int64_t wh, int64_t ww);

// context: [N, window.target()] int64, the window's cells before the target in raster order (all
// generated) -> logits [N, V] for the target.
using WindowLogits =
    std::function<torch::Tensor(const torch::Tensor& context, const Window& window)>;

// Draws [n, h, w] int64 codes on `device`, one cell at a time in raster order, each from
// next_logits over its (wh, ww) window. Cells not yet generated hold -1 and are never passed on.
torch::Tensor sample_with_window(int64_t n, int64_t h, int64_t w, int64_t wh, int64_t ww,
                                 const WindowLogits& next_logits, const SamplingOptions& options,
                                 at::Generator& generator, torch::Device device);

}  // namespace lf
