// Nearest-neighbour enlargement, error heat maps and base64: see image_views.h.
#include "server/image_views.h"

#include <algorithm>

#include "core/error.h"
#include "io/image.h"

namespace lf::serve {

int64_t view_scale(int64_t height, int64_t width, int64_t min_side) {
  const int64_t side = std::max<int64_t>(1, std::max(height, width));
  return std::clamp<int64_t>((min_side + side - 1) / side, 1, 16);
}

torch::Tensor upscale_nearest(const torch::Tensor& image, int64_t factor) {
  if (factor <= 1) return image;
  return image.repeat_interleave(factor, -2).repeat_interleave(factor, -1);
}

torch::Tensor error_heat_map(const torch::Tensor& a, const torch::Tensor& b, double& max_error) {
  // [C, H, W] -> [H, W] mean absolute error on the [0, 1] scale
  const torch::Tensor err = ((a - b).abs() / 2).mean(0).to(torch::kFloat);
  max_error = err.max().item<double>();
  const double scale = max_error > 1e-8 ? max_error : 1.0;
  const torch::Tensor t = (err / scale).clamp(0, 1);
  // Black -> red -> yellow -> white: red rises over the first third, green the second, blue last.
  const torch::Tensor r = (t * 3).clamp(0, 1);
  const torch::Tensor g = (t * 3 - 1).clamp(0, 1);
  const torch::Tensor bl = (t * 3 - 2).clamp(0, 1);
  return torch::stack({r, g, bl}) * 2 - 1;
}

std::string png_base64(const torch::Tensor& image, int64_t scale) {
  return base64_encode(encode_png(upscale_nearest(image, scale)));
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += alphabet[v >> 6 & 63];
    out += alphabet[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v =
        uint32_t(uint8_t(bytes[i])) << 16 | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    out += two ? alphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& text, const std::string& what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  size_t n = text.size();
  while (n > 0 && text[n - 1] == '=') --n;
  if (text.size() % 4 != 0 || text.size() - n > 2)
    fail("serve", "{}: not base64 (expected a length that is a multiple of 4)", what);
  std::string out;
  out.reserve(n * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = value(text[i]);
    if (v < 0) fail("serve", "{}: not base64 (character {} at {})", what, int(text[i]), i);
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      out.push_back(static_cast<char>(bits >> 16));
      out.push_back(static_cast<char>(bits >> 8));
      out.push_back(static_cast<char>(bits));
      bits = 0;
      count = 0;
    }
  }
  if (count == 3) {
    out.push_back(static_cast<char>(bits >> 10));
    out.push_back(static_cast<char>(bits >> 2));
  } else if (count == 2) {
    out.push_back(static_cast<char>(bits >> 4));
  }
  return out;
}

}  // namespace lf::serve
