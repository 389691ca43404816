// Sliding-window sampling over grids of any size.
#include "priors/sliding_window.h"

#include <algorithm>

#include "core/error.h"

namespace lf {

Window window_around(int64_t i, int64_t j, int64_t h, int64_t w, int64_t wh, int64_t ww) {
  if (wh < 1 || ww < 1 || wh > h || ww > w || i < 0 || j < 0 || i >= h || j >= w)
    fail("window_around",
         "expected a window of 1..{}x1..{} around a cell of the grid, got {}x{} "
         "at ({}, {})",
         h, w, wh, ww, i, j);
  Window win;
  win.height = wh;
  win.width = ww;
  win.top = std::clamp<int64_t>(i - wh / 2, 0, h - wh);
  win.left = std::clamp<int64_t>(j - ww / 2, 0, w - ww);
  win.row = i - win.top;
  win.col = j - win.left;
  return win;
}

torch::Tensor sample_with_window(int64_t n, int64_t h, int64_t w, int64_t wh, int64_t ww,
                                 const WindowLogits& next_logits, const SamplingOptions& options,
                                 at::Generator& generator, torch::Device device) {
  auto grid = torch::full({n, h, w}, -1, torch::TensorOptions(torch::kInt64).device(device));
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      const Window win = window_around(i, j, h, w, wh, ww);
      // Rows of the window above the target (complete: generated before row i), then the target
      // row up to the target.
      const auto above =
          grid.slice(1, win.top, i).slice(2, win.left, win.left + ww).reshape({n, -1});
      const auto left = grid.select(1, i).slice(1, win.left, j);
      const auto context = torch::cat({above, left}, 1);
      if (context.numel() > 0 && context.min().item<int64_t>() < 0)
        fail("sample_with_window", "cell ({}, {}): the window reads a cell not generated yet", i,
             j);
      grid.select(1, i).select(1, j).copy_(
          options.cell_tokens([&] { return next_logits(context, win); }, i * w + j, w, generator));
      options.report([&] { return grid; }, i * w + j + 1, h * w);
    }
  }
  return grid;
}

}  // namespace lf
