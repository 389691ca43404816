// Tiled application with linear blending: see tiling.h.
#include "models/tiling.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace lf {
namespace {

// Tile origins along one axis of `size` input pixels: a stride of tile - overlap, the last tile
// aligned to the end, all multiples of `align`.
std::vector<int64_t> tile_starts(int64_t size, int64_t tile, int64_t overlap, int64_t align) {
  if (tile >= size) return {0};
  const int64_t stride = std::max<int64_t>(align, (tile - overlap) / align * align);
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + tile < size; s += stride) starts.push_back(s);
  starts.push_back((size - tile) / align * align);
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

// Blend weights [length] of one tile along one axis in output pixels: ramps of `ramp` pixels up
// from the tile's start and down to its end, except at the image border (nothing to blend with).
torch::Tensor axis_weights(int64_t length, int64_t ramp, bool ramp_start, bool ramp_end,
                           const torch::TensorOptions& options) {
  auto w = torch::ones({length}, options);
  if (ramp <= 0) return w;
  const auto r = std::min(ramp, length);
  const auto up = (torch::arange(r, options) + 0.5) / static_cast<double>(r);
  if (ramp_start) w.narrow(0, 0, r).mul_(up);
  if (ramp_end) w.narrow(0, length - r, r).mul_(up.flip(0));
  return w;
}

}  // namespace

torch::Tensor tiled_apply(const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                          const torch::Tensor& x, const TileOptions& options, int64_t up,
                          int64_t down) {
  if (x.dim() != 4) fail("tiled_apply", "expected [N, C, H, W], got {}", shape_str(x.sizes()));
  if (up < 1 || down < 1) fail("tiled_apply", "expected up, down >= 1, got {}, {}", up, down);
  const int64_t height = x.size(2), width = x.size(3);
  if (!options.enabled() || (options.tile >= height && options.tile >= width)) return fn(x);
  if (options.tile % down != 0 || options.overlap < 0 || options.overlap >= options.tile)
    fail("tiled_apply",
         "expected a tile side that is a multiple of {} and 0 <= overlap < tile, got tile {}, "
         "overlap {}",
         down, options.tile, options.overlap);
  const auto rows = tile_starts(height, options.tile, options.overlap, down);
  const auto cols = tile_starts(width, options.tile, options.overlap, down);
  const int64_t ramp = options.overlap * up / down;
  torch::Tensor out, weight_sum;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < cols.size(); ++j) {
      const int64_t th = std::min(options.tile, height), tw = std::min(options.tile, width);
      const auto tile = fn(x.narrow(2, rows[i], th).narrow(3, cols[j], tw));
      const int64_t oh = th * up / down, ow = tw * up / down;
      if (tile.dim() != 4 || tile.size(2) != oh || tile.size(3) != ow)
        fail("tiled_apply", "expected a tile output [N, C, {}, {}], got {}", oh, ow,
             shape_str(tile.sizes()));
      if (!out.defined()) {
        out = torch::zeros({tile.size(0), tile.size(1), height * up / down, width * up / down},
                           tile.options());
        weight_sum = torch::zeros({out.size(2), out.size(3)}, tile.options());
      }
      const auto wy = axis_weights(oh, ramp, i > 0, i + 1 < rows.size(), tile.options());
      const auto wx = axis_weights(ow, ramp, j > 0, j + 1 < cols.size(), tile.options());
      const auto w = wy.unsqueeze(1) * wx.unsqueeze(0);  // [oh, ow]
      const int64_t oy = rows[i] * up / down, ox = cols[j] * up / down;
      out.narrow(2, oy, oh).narrow(3, ox, ow).add_(tile * w);
      weight_sum.narrow(0, oy, oh).narrow(1, ox, ow).add_(w);
    }
  }
  return out / weight_sum;
}

}  // namespace lf
