// Tiled application of a convolutional network to images larger than memory allows: overlapping
// tiles, each run on its own, blended with weights that ramp linearly across the overlaps so no
// seam shows. Memory is one tile's activations plus the output.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace lf {

struct TileOptions {
  int64_t tile = 0;     // tile side in input pixels; 0: no tiling
  int64_t overlap = 0;  // overlap of neighbouring tiles in input pixels, < tile
  bool enabled() const { return tile > 0; }
};

// fn maps [N, C, h, w] -> [N, C', h * up / down, w * up / down] (a decoder: up = f, down = 1; an
// encoder: up = 1, down = f). Applies it to tiles of x [N, C, H, W] and blends the results. Tile
// origins and sides are multiples of `down`; the last tile in a row/column is aligned to the
// border. With tile >= H and W this is fn(x).
torch::Tensor tiled_apply(const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                          const torch::Tensor& x, const TileOptions& options, int64_t up,
                          int64_t down);

}  // namespace lf
