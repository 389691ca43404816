// Image I/O on stb (PNG and BMP decoders, the encoders and the resampler come from Debian's
// libstb) and libjpeg-turbo (the JPEG decoder: io/jpeg_decoder.h says why not stb's).
#include "io/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string_view>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/jpeg_decoder.h"

namespace lf {

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

const char* stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct StbiFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};

// stbi_write_*_to_func callback: appends the encoded bytes to a std::string.
void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

// Checks that image is [C, H, W] (or [N, C, H, W] when allow_batch) with H, W > 0.
void check_planes(const char* where, const torch::Tensor& image, bool allow_batch) {
  const bool rank_ok = image.dim() == 3 || (allow_batch && image.dim() == 4);
  if (!rank_ok || image.size(-1) == 0 || image.size(-2) == 0 || image.size(-3) == 0)
    fail(where, "expected {} with C, H, W > 0, got {}",
         allow_batch ? "[C,H,W] or [N,C,H,W]" : "[C,H,W]", shape_str(image.sizes()));
  if (!image.is_floating_point())
    fail(where, "expected a floating-point tensor, got {}", c10::toString(image.scalar_type()));
}

// The formats load_image decodes, and the most pixels one file byte of each can describe: PNG's
// deflate expands at most 1032:1 and a row may be 1 bit per pixel; a JPEG needs at least 1 bit per
// 8x8 block; a BMP at least 1 bit per pixel. A truncated JPEG (libjpeg) or BMP (stb) decodes with
// what it lacks filled in, so without this bound a 700-byte file could claim 16384x16384 pixels.
struct ImageFormat {
  const char* name;
  std::string magic;
  int64_t max_pixels_per_byte;
};
const ImageFormat kFormats[] = {
    {"PNG", "\x89PNG\r\n\x1a\n", 8 * 1032}, {"JPEG", "\xff\xd8", 512}, {"BMP", "BM", 8}};

const ImageFormat* detect_format(std::string_view bytes) {
  for (const ImageFormat& f : kFormats)
    if (bytes.size() >= f.magic.size() && bytes.compare(0, f.magic.size(), f.magic) == 0) return &f;
  return nullptr;
}

// stb grows its IDAT buffer to a chunk's stated length before reading the chunk, so a 137-byte PNG
// whose IDAT claims 1.1 GB had 2 GB allocated before the read failed (found by fuzz/fuzz_image).
// The chunks are walked the way stb reads them (up to IEND) and one that claims more bytes than
// the file has left is named, before stb runs. Such a file fails in stb anyway.
std::string png_chunk_past_end(std::string_view b) {
  auto be32 = [&](size_t i) {
    return uint32_t{static_cast<uint8_t>(b[i])} << 24 |
           uint32_t{static_cast<uint8_t>(b[i + 1])} << 16 |
           uint32_t{static_cast<uint8_t>(b[i + 2])} << 8 | static_cast<uint8_t>(b[i + 3]);
  };
  for (size_t p = 8; p + 8 <= b.size();) {
    const uint64_t length = be32(p);
    const std::string_view type = b.substr(p + 4, 4);
    const uint64_t left = b.size() - (p + 8);
    if (length > left) {
      // Chunk types are four ASCII letters; anything else is shown in hex.
      const bool letters = std::all_of(type.begin(), type.end(), [](char c) {
        return std::isalpha(static_cast<unsigned char>(c)) != 0;
      });
      const std::string name = letters ? std::string(type) : fmt::format("0x{:08x}", be32(p + 4));
      return fmt::format("PNG chunk '{}' at byte {} claims {} bytes, {} left in the file", name, p,
                         length, left);
    }
    if (type == "IEND") break;
    p += 8 + length + 4;  // header, data, CRC
  }
  return {};
}

// PNG and BMP sizes straight from their headers: when stb's own limits refuse a file, stbi_info
// answers "unknown image type", so ours are checked first to name the limit.
bool header_size(std::string_view bytes, const ImageFormat& format, int64_t& width,
                 int64_t& height) {
  unsigned char b[26] = {};
  const size_t n = std::min(bytes.size(), sizeof(b));
  std::memcpy(b, bytes.data(), n);
  auto be32 = [&](int i) {
    return int64_t{b[i]} << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3];
  };
  auto le32 = [&](int i) {
    return int64_t{static_cast<int32_t>(b[i] | b[i + 1] << 8 | b[i + 2] << 16 |
                                        static_cast<uint32_t>(b[i + 3]) << 24)};
  };
  if (std::strcmp(format.name, "PNG") == 0 && n >= 24) {
    width = be32(16);
    height = be32(20);
    return true;
  }
  if (std::strcmp(format.name, "BMP") == 0 && n >= 26) {
    width = std::abs(le32(18));
    height = std::abs(le32(22));  // negative: rows stored top-down
    return true;
  }
  return false;
}

const stbi_uc* stb_bytes(std::string_view bytes) {
  return reinterpret_cast<const stbi_uc*>(bytes.data());
}

void check_size(const char* where, int64_t height, int64_t width) {
  if (height < 1 || width < 1 || height > kImageMaxSide || width > kImageMaxSide)
    fail(where, "expected a size in [1, {}], got {}x{}", kImageMaxSide, height, width);
}

// [C, H, W] float in [-1, 1] -> the encoded bytes of a .png, .bmp or .jpg (quality 95).
std::string encode_image_bytes(const char* where, const std::string& name, const torch::Tensor& chw,
                               const std::string& ext) {
  const torch::Tensor hwc = to_uint8_hwc(chw);
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1));
  const int c = static_cast<int>(hwc.size(2));
  std::string encoded;
  int ok = 0;
  if (ext == ".png")
    ok = stbi_write_png_to_func(append_to_string, &encoded, w, h, c, hwc.data_ptr(), w * c);
  else if (ext == ".bmp")
    ok = stbi_write_bmp_to_func(append_to_string, &encoded, w, h, c, hwc.data_ptr());
  else
    ok = stbi_write_jpg_to_func(append_to_string, &encoded, w, h, c, hwc.data_ptr(), 95);
  if (!ok || encoded.empty())
    fail(where, "{}: encoding {} as {} failed", name, shape_str(chw.sizes()), ext);
  return encoded;
}

}  // namespace

bool is_image_path(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

ImageInfo probe_image(std::string_view bytes, const std::string& name) {
  constexpr const char* kWhere = "image::load";
  // Header first: a hostile file claiming a huge size is refused before anything is allocated.
  const ImageFormat* format = detect_format(bytes);
  if (!format) fail(kWhere, "{}: not a readable image (not a PNG, JPEG or BMP file)", name);
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    fail(kWhere, "{}: {} bytes, expected at most {}", name, bytes.size(),
         std::numeric_limits<int>::max());
  if (std::strcmp(format->name, "PNG") == 0)
    if (const std::string chunk = png_chunk_past_end(bytes); !chunk.empty())
      fail(kWhere, "{}: not a readable image ({})", name, chunk);
  int64_t header_w = 0, header_h = 0;
  if (header_size(bytes, *format, header_w, header_h) &&
      (header_w > kImageMaxSide || header_h > kImageMaxSide ||
       header_w * header_h > kImageMaxPixels))
    fail(kWhere, "{}: image is {}x{}, expected at most {} px per side and {} pixels", name,
         header_w, header_h, kImageMaxSide, kImageMaxPixels);
  int width = 0, height = 0, stored = 0;
  if (std::strcmp(format->name, "JPEG") == 0) {
    const JpegHeader header = read_jpeg_header(bytes, name);
    width = static_cast<int>(header.width);
    height = static_cast<int>(header.height);
    stored = static_cast<int>(header.channels);
  } else if (!stbi_info_from_memory(stb_bytes(bytes), static_cast<int>(bytes.size()), &width,
                                    &height, &stored)) {
    fail(kWhere, "{}: not a readable image ({})", name, stb_reason());
  }
  // stbi_info gives a top-down BMP's height as stored, negative, and stb decodes |height| rows:
  // checked as a negative number, a 30-byte BMP claiming 15616x-16128 passed every limit below and
  // decoded 252 M pixels in 21 s (found by fuzz/fuzz_image).
  if (width == std::numeric_limits<int>::min() || height == std::numeric_limits<int>::min())
    fail(kWhere, "{}: not a readable image (header says {}x{})", name, width, height);
  width = std::abs(width);
  height = std::abs(height);
  if (width == 0 || height == 0)
    fail(kWhere, "{}: not a readable image (header says {}x{})", name, width, height);
  if (width > kImageMaxSide || height > kImageMaxSide || int64_t{width} * height > kImageMaxPixels)
    fail(kWhere, "{}: image is {}x{}, expected at most {} px per side and {} pixels", name, width,
         height, kImageMaxSide, kImageMaxPixels);
  const int64_t file_bytes = static_cast<int64_t>(bytes.size());
  if (int64_t{width} * height > file_bytes * format->max_pixels_per_byte)
    fail(kWhere,
         "{}: header says {}x{}, more pixels than a {}-byte {} can hold (at most {} per byte): "
         "truncated or not an image",
         name, width, height, file_bytes, format->name, format->max_pixels_per_byte);
  return {width, height, stored, format->name};
}

torch::Tensor decode_image(std::string_view bytes, const std::string& name, int64_t channels) {
  constexpr const char* kWhere = "image::load";
  if (channels != 0 && channels != 1 && channels != 3)
    fail(kWhere, "{}: channels must be 0 (as stored), 1 or 3, got {}", name, channels);
  const ImageInfo info = probe_image(bytes, name);
  const int wanted = channels != 0 ? static_cast<int>(channels) : (info.channels <= 2 ? 1 : 3);
  if (info.format == "JPEG") return from_uint8_hwc(decode_jpeg(bytes, name, wanted));
  int w = 0, h = 0, n = 0;
  std::unique_ptr<unsigned char, StbiFree> data(
      stbi_load_from_memory(stb_bytes(bytes), static_cast<int>(bytes.size()), &w, &h, &n, wanted));
  if (!data) fail(kWhere, "{}: cannot decode ({})", name, stb_reason());
  if (w != info.width || h != info.height)
    fail(kWhere, "{}: header says {}x{}, decoded {}x{}", name, info.width, info.height, w, h);
  auto pixels = torch::from_blob(data.get(), {h, w, wanted}, torch::kUInt8);
  return from_uint8_hwc(pixels);  // copies out of stb's buffer before it is freed
}

torch::Tensor load_image(const std::string& path, int64_t channels) {
  constexpr const char* kWhere = "image::load";
  if (channels != 0 && channels != 1 && channels != 3)
    fail(kWhere, "{}: channels must be 0 (as stored), 1 or 3, got {}", path, channels);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(kWhere, "{}: no such file", path);
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(kWhere, "{}: cannot open: {}", path, std::strerror(errno));
  std::string bytes;
  char chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0;) bytes.append(chunk, n);
  if (std::ferror(file.get())) fail(kWhere, "{}: read error: {}", path, std::strerror(errno));
  return decode_image(bytes, path, channels);
}

void save_image(const std::string& path, const torch::Tensor& image) {
  constexpr const char* kWhere = "image::save";
  torch::Tensor chw = image.dim() == 4 && image.size(0) == 1 ? image[0] : image;
  if (chw.dim() != 3 || (chw.size(0) != 1 && chw.size(0) != 3) || chw.size(1) == 0 ||
      chw.size(2) == 0)
    fail(kWhere, "{}: expected [C,H,W] with C in {{1,3}}, got {}", path, shape_str(image.sizes()));
  if (!chw.is_floating_point())
    fail(kWhere, "{}: expected a floating-point tensor in [-1, 1], got {}", path,
         c10::toString(chw.scalar_type()));
  if (chw.size(1) > kImageMaxSide || chw.size(2) > kImageMaxSide)
    fail(kWhere, "{}: image is {}x{}, expected at most {} px per side", path, chw.size(1),
         chw.size(2), kImageMaxSide);  // load_image's limit; also stb's JPEG header holds 16 bits
  const std::string ext = lower_extension(path);
  if (ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".bmp")
    fail(kWhere, "{}: unknown extension '{}', expected .png, .jpg, .jpeg or .bmp", path, ext);

  write_file_atomic(path, encode_image_bytes(kWhere, path, chw, ext));
}

std::string encode_png(const torch::Tensor& image) {
  constexpr const char* kWhere = "image::encode_png";
  torch::Tensor chw = image.dim() == 4 && image.size(0) == 1 ? image[0] : image;
  if (chw.dim() != 3 || (chw.size(0) != 1 && chw.size(0) != 3) || chw.size(1) == 0 ||
      chw.size(2) == 0 || !chw.is_floating_point())
    fail(kWhere, "expected a float [C,H,W] with C in {{1,3}}, got {} {}",
         c10::toString(chw.scalar_type()), shape_str(image.sizes()));
  if (chw.size(1) > kImageMaxSide || chw.size(2) > kImageMaxSide)
    fail(kWhere, "image is {}x{}, expected at most {} px per side", chw.size(1), chw.size(2),
         kImageMaxSide);
  return encode_image_bytes(kWhere, "<memory>", chw, ".png");
}

torch::Tensor to_uint8_hwc(const torch::Tensor& image) {
  check_planes("image::to_uint8_hwc", image, /*allow_batch=*/false);
  return ((image.detach().to(torch::kCPU, torch::kFloat).nan_to_num(0.0) + 1.0) * 127.5)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .permute({1, 2, 0})
      .contiguous();
}

torch::Tensor from_uint8_hwc(const torch::Tensor& pixels) {
  if (pixels.dim() != 3 || pixels.scalar_type() != torch::kUInt8)
    fail("image::from_uint8_hwc", "expected uint8 [H,W,C], got {} {}",
         c10::toString(pixels.scalar_type()), shape_str(pixels.sizes()));
  return (pixels.permute({2, 0, 1}).to(torch::kFloat) / 127.5 - 1.0).contiguous();
}

torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width) {
  constexpr const char* kWhere = "image::resize";
  check_planes(kWhere, image, /*allow_batch=*/true);
  check_size(kWhere, height, width);
  const int64_t in_h = image.size(-2), in_w = image.size(-1);
  const torch::Tensor src = image.detach().to(torch::kCPU, torch::kFloat).contiguous();
  if (in_h == height && in_w == width) return src.clone().to(image.device());

  auto out_sizes = src.sizes().vec();
  out_sizes[out_sizes.size() - 2] = height;
  out_sizes[out_sizes.size() - 1] = width;
  torch::Tensor dst = torch::empty(out_sizes, src.options());
  const int64_t planes = src.numel() / (in_h * in_w);
  const float* in = src.data_ptr<float>();
  float* out = dst.data_ptr<float>();
  // Each plane is contiguous: resize it as a one-channel image (no alpha handling wanted).
  for (int64_t p = 0; p < planes; ++p) {
    if (!stbir_resize_float(in + p * in_h * in_w, static_cast<int>(in_w), static_cast<int>(in_h), 0,
                            out + p * height * width, static_cast<int>(width),
                            static_cast<int>(height), 0, 1))
      fail(kWhere, "stbir_resize_float failed for {} -> {}x{}", shape_str(image.sizes()), height,
           width);
  }
  return dst.to(image.device());
}

torch::Tensor center_crop_resize(const torch::Tensor& image, int64_t height, int64_t width) {
  constexpr const char* kWhere = "image::center_crop_resize";
  check_planes(kWhere, image, /*allow_batch=*/true);
  check_size(kWhere, height, width);
  const int64_t in_h = image.size(-2), in_w = image.size(-1);
  int64_t crop_h = in_h, crop_w = in_w;
  if (in_w * height > in_h * width)  // wider than the target: keep the full height
    crop_w = std::max<int64_t>(1, std::llround(static_cast<double>(in_h) * width / height));
  else
    crop_h = std::max<int64_t>(1, std::llround(static_cast<double>(in_w) * height / width));
  // Offsets rounded like torchvision's CenterCrop.
  const int64_t top = std::llround((in_h - crop_h) / 2.0);
  const int64_t left = std::llround((in_w - crop_w) / 2.0);
  const torch::Tensor crop = image.narrow(-2, top, crop_h).narrow(-1, left, crop_w);
  return resize_image(crop, height, width);
}

torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow, int64_t padding,
                        float pad_value) {
  constexpr const char* kWhere = "image::make_grid";
  if (images.dim() != 4 || images.size(0) == 0)
    fail(kWhere, "expected [N,C,H,W] with N > 0, got {}", shape_str(images.sizes()));
  if (nrow < 1 || padding < 0)
    fail(kWhere, "expected nrow >= 1 and padding >= 0, got nrow={} padding={}", nrow, padding);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t cols = std::min(n, nrow);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t cell_h = h + padding, cell_w = w + padding;
  torch::Tensor grid = torch::full({c, rows * cell_h + padding, cols * cell_w + padding}, pad_value,
                                   images.options());
  const torch::Tensor src = images.detach();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y = (k / cols) * cell_h + padding, x = (k % cols) * cell_w + padding;
    grid.narrow(1, y, h).narrow(2, x, w).copy_(src[k]);
  }
  return grid;
}

void save_grid(const std::string& path, const torch::Tensor& images, int64_t nrow) {
  save_image(path, make_grid(images, nrow));
}

}  // namespace lf
