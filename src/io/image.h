// Image files <-> float tensors in [-1, 1] (stb_image / stb_image_write / stb_image_resize, and
// libjpeg-turbo for decoding JPEGs),
// plus resizing, centre crops and torchvision-style grids for sample sheets.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace lf {

// Decoding refuses images larger than this (checked from the header, before decoding).
constexpr int64_t kImageMaxSide = 16384;
constexpr int64_t kImageMaxPixels = int64_t{1} << 28;

// Loads PNG/JPEG/BMP/... (format from the content) -> float32 [C, H, W] in [-1, 1].
// channels 0 keeps the stored colour kind (gray -> 1, gray+alpha -> 1, RGB/RGBA -> 3);
// 1 or 3 converts (RGB -> gray is luma: a JPEG's own Y, stb's weights for PNG and BMP). Alpha is
// always dropped.
torch::Tensor load_image(const std::string& path, int64_t channels = 0);

// What an encoded image's header says, read without decoding it.
struct ImageInfo {
  int64_t width = 0, height = 0;
  int64_t channels = 0;  // as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  std::string format;    // "PNG", "JPEG" or "BMP"
};
// The size and colour kind of an encoded PNG/JPEG/BMP held in memory, after load_image's checks
// on the header (size limits, pixels the byte count can hold); `name` appears in errors.
ImageInfo probe_image(std::string_view bytes, const std::string& name);
// load_image for an encoded image held in memory.
torch::Tensor decode_image(std::string_view bytes, const std::string& name, int64_t channels = 0);

// image: float [C, H, W] or [1, C, H, W] in [-1, 1], C in {1, 3}. Format from the extension:
// .png, .jpg/.jpeg (quality 95) or .bmp. Encoded in memory, then written atomically. At most
// kImageMaxSide px per side. stb writes JPEGs as 3-channel, so gray JPEGs load back as RGB.
void save_image(const std::string& path, const torch::Tensor& image);

// float [C, H, W] or [1, C, H, W] in [-1, 1], C in {1, 3} -> the bytes of a PNG file.
std::string encode_png(const torch::Tensor& image);

// float [C, H, W] in [-1, 1] -> uint8 [H, W, C] (clamped, rounded; NaN -> mid-gray), on the CPU.
torch::Tensor to_uint8_hwc(const torch::Tensor& image);
// uint8 [H, W, C] -> float32 [C, H, W] in [-1, 1].
torch::Tensor from_uint8_hwc(const torch::Tensor& pixels);

// float [C, H, W] (or [N, C, H, W]) -> [.., height, width] with stb_image_resize's filters
// (Mitchell when shrinking, Catmull-Rom when enlarging, edges clamped), so shrinking averages
// instead of aliasing. Cubic filters may overshoot slightly at sharp edges; nothing is clamped.
torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width);

// Crops the largest centred region with the aspect ratio height:width, then resizes to it
// (torchvision's CenterCrop + Resize). image: [C, H, W] (or [N, C, H, W]).
torch::Tensor center_crop_resize(const torch::Tensor& image, int64_t height, int64_t width);

// [N, C, H, W] -> [C, rows * (H + padding) + padding, min(N, nrow) * (W + padding) + padding],
// images in row-major order, like torchvision.utils.make_grid (but always padded, N = 1 too).
// pad_value 1 is white in [-1, 1] space; empty cells of the last row get pad_value as well.
torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow = 8, int64_t padding = 2,
                        float pad_value = 1.0f);

// make_grid + save_image.
void save_grid(const std::string& path, const torch::Tensor& images, int64_t nrow = 8);

// True for .png .jpg .jpeg .bmp (case-insensitive).
bool is_image_path(const std::string& path);

}  // namespace lf
