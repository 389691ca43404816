// Images as the browser is shown them: enlarged with nearest-neighbour (28 px garments stay
// sharp), an error heat map, and PNG bytes as base64 for JSON.
#pragma once

#include <torch/torch.h>

#include <string>

namespace lf::serve {

// The integer factor (1..16) that brings the longer side of an h x w image to at least min_side.
int64_t view_scale(int64_t height, int64_t width, int64_t min_side = 256);
// [C, H, W] -> [C, H * factor, W * factor], each pixel repeated (nearest-neighbour).
torch::Tensor upscale_nearest(const torch::Tensor& image, int64_t factor);
// Per-pixel mean absolute error of two [C, H, W] images in [-1, 1], coloured from black through
// red and yellow to white over [0, max_error] -> [3, H, W] in [-1, 1]. max_error 0: the largest.
torch::Tensor error_heat_map(const torch::Tensor& a, const torch::Tensor& b, double& max_error);
// image [C, H, W] in [-1, 1], enlarged by `scale` -> base64 of its PNG (what the pages show).
std::string png_base64(const torch::Tensor& image, int64_t scale);
// RFC 4648 base64 (written here: a dozen lines, and nothing in our dependencies exports one).
std::string base64_encode(const std::string& bytes);
// The inverse, for uploads sent inside JSON; throws lf::Error naming `what` on anything else.
std::string base64_decode(const std::string& text, const std::string& what);

}  // namespace lf::serve
