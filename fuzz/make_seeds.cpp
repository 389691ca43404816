// Writes the seeds that tests/fixtures has no files for: small PNG, JPEG and BMP images (stb's
// encoders) and IDX image/label files, plain and gzip. Usage: fuzz_make_seeds DIR
// (writes DIR/image/* and DIR/idx/*).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

// A gradient with a diagonal stripe, so the encoders produce more than one run.
std::vector<uint8_t> pixels(int w, int h, int c) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        p[(static_cast<size_t>(y) * w + x) * c + k] =
            static_cast<uint8_t>(x == y ? 255 : (x * 37 + y * 11 + k * 90) % 256);
  return p;
}

std::string idx(uint32_t magic, const std::vector<uint32_t>& dims, uint8_t first) {
  std::string s;
  size_t n = 1;
  for (uint32_t v : std::vector<uint32_t>{magic})
    s += std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  for (uint32_t d : dims) {
    s += std::string{char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
    n *= d;
  }
  for (size_t i = 0; i < n; ++i)
    s += static_cast<char>((first + i * 7) % (magic == 0x801 ? 10 : 256));
  return s;
}

bool write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
                  static_cast<int>(bytes.size());
  return gzclose(f) == Z_OK && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir + "/image");
  std::filesystem::create_directories(dir + "/idx");
  bool ok = true;
  struct Shape {
    int w, h, c;
  };
  for (const Shape s : {Shape{8, 8, 1}, Shape{5, 7, 3}, Shape{4, 4, 4}, Shape{3, 3, 2}}) {
    const auto p = pixels(s.w, s.h, s.c);
    const std::string name =
        std::to_string(s.w) + "x" + std::to_string(s.h) + "x" + std::to_string(s.c);
    std::string png, jpg, bmp;
    stbi_write_png_to_func(append, &png, s.w, s.h, s.c, p.data(), s.w * s.c);
    stbi_write_jpg_to_func(append, &jpg, s.w, s.h, s.c, p.data(), 90);
    stbi_write_bmp_to_func(append, &bmp, s.w, s.h, s.c, p.data());
    ok &= write_file(dir + "/image/" + name + ".png", png);
    ok &= write_file(dir + "/image/" + name + ".jpg", jpg);
    ok &= write_file(dir + "/image/" + name + ".bmp", bmp);
  }
  const std::string images = idx(0x803, {3, 4, 5}, 0), labels = idx(0x801, {3}, 2);
  ok &= write_file(dir + "/idx/images-idx3-ubyte", images);
  ok &= write_file(dir + "/idx/labels-idx1-ubyte", labels);
  ok &= write_gz(dir + "/idx/images-idx3-ubyte.gz", images);
  ok &= write_gz(dir + "/idx/labels-idx1-ubyte.gz", labels);
  if (!ok) {
    std::fprintf(stderr, "fuzz_make_seeds: cannot write under %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
