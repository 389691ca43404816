// Tests for io/image: PNG/JPEG round trips, conversions, resizing, grids and hostile files.
#include "io/image.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <jpeglib.h>  // after <cstdio>: it uses size_t and FILE without including them

#include "core/error.h"
#include "io/atomic_file.h"

namespace fs = std::filesystem;

namespace {

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("lf_image_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_bytes(const std::string& file, const std::string& bytes) const {
    std::ofstream(file, std::ios::binary) << bytes;
  }
  // A JPEG written by libjpeg itself (quality 100, 4:4:4), for the kinds stb never writes:
  // components 1 (in_space JCS_GRAYSCALE) or 4 (JCS_CMYK, stored as JCS_YCCK with Adobe's marker),
  // progressive with the given scan script when `scans` is not empty.
  static std::string encode_with_libjpeg(const uint8_t* pixels, int width, int height,
                                         int components, J_COLOR_SPACE in_space,
                                         J_COLOR_SPACE jpeg_space,
                                         const std::vector<jpeg_scan_info>& scans = {}) {
    jpeg_compress_struct cinfo;
    jpeg_error_mgr errors;
    cinfo.err = jpeg_std_error(&errors);  // a failure here exits the test binary, loudly
    jpeg_create_compress(&cinfo);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = width, cinfo.image_height = height;
    cinfo.input_components = components, cinfo.in_color_space = in_space;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, jpeg_space);
    jpeg_set_quality(&cinfo, 100, TRUE);
    for (int i = 0; i < cinfo.num_components; ++i)
      cinfo.comp_info[i].h_samp_factor = cinfo.comp_info[i].v_samp_factor = 1;
    if (!scans.empty()) {
      cinfo.scan_info = scans.data();
      cinfo.num_scans = static_cast<int>(scans.size());
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
      JSAMPROW row = const_cast<uint8_t*>(pixels) + cinfo.next_scanline * width * components;
      jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    std::string bytes(reinterpret_cast<const char*>(buffer), size);
    std::free(buffer);
    return bytes;
  }
  // Number of entries in the test directory (catches leftover temp files).
  size_t dir_entries() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }

  fs::path dir_;
};

// Random image already quantised to the uint8 grid, so a lossless round trip is exact.
torch::Tensor quantised_random(int64_t c, int64_t h, int64_t w) {
  return lf::from_uint8_hwc(lf::to_uint8_hwc(torch::rand({c, h, w}) * 2 - 1));
}

// Expects `fn` to throw lf::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_image_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected lf::Error";
  } catch (const lf::Error& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

// A PNG that is only a signature + IHDR (CRC left zero) claiming width x height RGB pixels.
std::string png_header(uint32_t width, uint32_t height) {
  std::string bytes("\x89PNG\r\n\x1a\n", 8);
  auto be32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(v >> shift));
  };
  be32(13);
  bytes += "IHDR";
  be32(width);
  be32(height);
  bytes +=
      std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, no filter, no interlace
  be32(0);                                     // wrong CRC: stb does not check it
  return bytes;
}

TEST_F(ImageTest, PngRoundTripGrayIsExact) {
  const auto image = quantised_random(1, 17, 23);
  lf::save_image(path("gray.png"), image);
  const auto loaded = lf::load_image(path("gray.png"));
  ASSERT_EQ(loaded.sizes(), image.sizes());
  EXPECT_EQ(loaded.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(loaded, image));
}

TEST_F(ImageTest, PngRoundTripRgbIsExact) {
  const auto image = quantised_random(3, 19, 31);
  lf::save_image(path("rgb.PNG"), image.unsqueeze(0));  // [1,C,H,W] and upper-case extension
  const auto loaded = lf::load_image(path("rgb.PNG"));
  ASSERT_EQ(loaded.sizes(), image.sizes());
  EXPECT_TRUE(torch::equal(loaded, image));
  EXPECT_GE(loaded.min().item<float>(), -1.0f);
  EXPECT_LE(loaded.max().item<float>(), 1.0f);
  EXPECT_EQ(dir_entries(), 1u);  // no temp file left behind
}

TEST_F(ImageTest, BmpRoundTripIsExact) {
  const auto image = quantised_random(3, 9, 13);
  lf::save_image(path("rgb.bmp"), image);
  EXPECT_TRUE(torch::equal(lf::load_image(path("rgb.bmp")), image));
}

TEST_F(ImageTest, JpegRoundTripWithinTolerance) {
  // Smooth content: JPEG at quality 95 keeps it close.
  const auto ys = torch::linspace(-1, 1, 40).view({1, 40, 1});
  const auto xs = torch::linspace(-1, 1, 56).view({1, 1, 56});
  const auto rgb =
      torch::cat({ys * xs, 0.8 * xs.expand({1, 40, 56}), 0.5 * ys.expand({1, 40, 56})});
  for (const std::string name : {"rgb.jpg", "rgb.jpeg"}) {
    lf::save_image(path(name), rgb);
    const auto loaded = lf::load_image(path(name));
    ASSERT_EQ(loaded.sizes(), rgb.sizes());
    EXPECT_LT((loaded - rgb).abs().mean().item<float>(), 0.02f) << name;
    EXPECT_LT((loaded - rgb).abs().max().item<float>(), 0.1f) << name;
  }
  const auto gray = rgb.narrow(0, 1, 1);
  lf::save_image(path("gray.jpg"), gray);  // stb stores JPEGs as YCbCr: gray comes back as RGB
  EXPECT_EQ(lf::load_image(path("gray.jpg")).size(0), 3);
  const auto loaded = lf::load_image(path("gray.jpg"), 1);
  ASSERT_EQ(loaded.sizes(), gray.sizes());
  EXPECT_LT((loaded - gray).abs().max().item<float>(), 0.1f);
}

TEST_F(ImageTest, RgbaInputDropsAlpha) {
  const int w = 5, h = 4;
  std::vector<uint8_t> rgba(w * h * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = static_cast<uint8_t>((i * 37) % 256);
  ASSERT_TRUE(stbi_write_png(path("rgba.png").c_str(), w, h, 4, rgba.data(), w * 4));

  const auto loaded = lf::load_image(path("rgba.png"));
  ASSERT_EQ(loaded.sizes(), (std::vector<int64_t>{3, h, w}));
  const auto expected = lf::from_uint8_hwc(
      torch::from_blob(rgba.data(), {h, w, 4}, torch::kUInt8).narrow(2, 0, 3).contiguous());
  EXPECT_TRUE(torch::equal(loaded, expected));
}

TEST_F(ImageTest, ChannelsConversion) {
  // RGB -> gray: a gray pixel stays itself; red becomes darker than white.
  auto rgb = torch::full({3, 2, 2}, 1.0f);
  rgb.select(2, 0).select(1, 0).fill_(0.0f);  // pixel (0,0) mid-gray-ish (value 0 -> 128)
  rgb.select(2, 1).select(1, 1).copy_(torch::tensor({1.0f, -1.0f, -1.0f}));  // pixel (1,1) red
  lf::save_image(path("rgb.png"), rgb);
  const auto gray = lf::load_image(path("rgb.png"), 1);
  ASSERT_EQ(gray.sizes(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_NEAR(gray[0][0][0].item<float>(), 128 / 127.5 - 1, 1e-6);
  EXPECT_NEAR(gray[0][0][1].item<float>(), 1.0, 1e-6);
  EXPECT_LT(gray[0][1][1].item<float>(), -0.3f);

  // Gray -> RGB: three equal channels.
  const auto one = quantised_random(1, 6, 7);
  lf::save_image(path("gray.png"), one);
  const auto three = lf::load_image(path("gray.png"), 3);
  ASSERT_EQ(three.sizes(), (std::vector<int64_t>{3, 6, 7}));
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(torch::equal(three[c], one[0]));

  expect_image_error([&] { lf::load_image(path("gray.png"), 2); },
                     {"[image::load]", "channels", "2"});
}

TEST_F(ImageTest, Uint8ConversionClampsAndRounds) {
  const auto image = torch::tensor({-2.0f, -1.0f, 0.0f, 1.0f, 3.0f, NAN}).view({1, 2, 3});
  const auto pixels = lf::to_uint8_hwc(image);
  ASSERT_EQ(pixels.sizes(), (std::vector<int64_t>{2, 3, 1}));
  ASSERT_EQ(pixels.scalar_type(), torch::kUInt8);
  const std::vector<int> expected = {0, 0, 128, 255, 255, 128};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(pixels.view(-1)[i].item<int>(), expected[i]) << i;
  expect_image_error([] { lf::from_uint8_hwc(torch::zeros({2, 2, 3})); }, {"uint8 [H,W,C]"});
}

TEST_F(ImageTest, CenterCropResizeShapeConstantAndGradient) {
  // Wide image 40x80 -> 32x32: the centred 40x40 region (columns 20..59) is kept.
  const auto constant = torch::full({3, 40, 80}, 0.25f);
  const auto out = lf::center_crop_resize(constant, 32, 32);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::allclose(out, torch::full_like(out, 0.25f), 0, 1e-5));

  auto gradient_x = [](int64_t h, int64_t w) {
    return (torch::arange(w, torch::kFloat) / (w - 1) * 2 - 1).view({1, 1, w}).expand({3, h, w});
  };
  const auto g = lf::center_crop_resize(gradient_x(40, 80), 32, 32);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{3, 32, 32}));
  const auto steps = g.narrow(2, 1, 31) - g.narrow(2, 0, 31);
  EXPECT_GE(steps.min().item<float>(), -1e-5f);  // monotone along every row
  EXPECT_GT(g[0][0][31].item<float>(), g[0][0][0].item<float>() + 0.5f);
  // Output pixel centres sample input columns 20.125 .. 58.875 (linear data is kept by the filter).
  auto value_at = [](double x) { return x / 79 * 2 - 1; };
  EXPECT_NEAR(g[0][5][0].item<float>(), value_at(20.125), 0.02);
  EXPECT_NEAR(g[0][5][31].item<float>(), value_at(58.875), 0.02);
  EXPECT_NEAR(g[1][5][16].item<float>(), value_at(40.125), 0.02);

  // Tall image: the full width is kept, rows are cropped; batches work too.
  const auto tall =
      lf::center_crop_resize(gradient_x(90, 30).unsqueeze(0).expand({2, 3, 90, 30}), 16, 8);
  ASSERT_EQ(tall.sizes(), (std::vector<int64_t>{2, 3, 16, 8}));
  EXPECT_LT(tall[1][2][7][0].item<float>(), -0.85f);
  EXPECT_GT(tall[1][2][7][7].item<float>(), 0.85f);

  expect_image_error([&] { lf::center_crop_resize(constant, 0, 32); },
                     {"[image::center_crop_resize]"});
}

TEST_F(ImageTest, ResizeDownsamplingAverages) {
  // 1-pixel checkerboard of +-1: a proper filter averages it to mid-gray, nearest would not.
  const auto idx = torch::arange(64);
  const auto board = ((idx.view({64, 1}) + idx.view({1, 64})) % 2).to(torch::kFloat) * 2 - 1;
  const auto image = board.unsqueeze(0).expand({3, 64, 64}).contiguous();
  const auto small = lf::resize_image(image, 16, 16);
  ASSERT_EQ(small.sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_LT(small.abs().max().item<float>(), 0.05f);

  // Enlarging keeps a constant image constant; same size is a copy.
  const auto up = lf::resize_image(torch::full({1, 5, 7}, -0.5f), 20, 13);
  ASSERT_EQ(up.sizes(), (std::vector<int64_t>{1, 20, 13}));
  EXPECT_TRUE(torch::allclose(up, torch::full_like(up, -0.5f), 0, 1e-5));
  EXPECT_TRUE(torch::equal(lf::resize_image(image, 64, 64), image));

  expect_image_error(
      [&] {
        lf::resize_image(torch::zeros({8, 8}), 4, 4);
      },
      {"[image::resize]", "[8, 8]"});
}

TEST_F(ImageTest, MakeGridLayout) {
  const int64_t n = 16, c = 3, s = 28, pad = 2;
  const auto images =
      (torch::arange(n, torch::kFloat) / n - 0.5).view({n, 1, 1, 1}).expand({n, c, s, s});
  const auto grid = lf::make_grid(images, 4, pad);
  const int64_t side = 4 * s + 5 * pad;
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{c, side, side}));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y = pad + (k / 4) * (s + pad), x = pad + (k % 4) * (s + pad);
    const auto cell = grid.narrow(1, y, s).narrow(2, x, s);
    EXPECT_TRUE(torch::equal(cell, images[k])) << "image " << k;
  }
  // Padding: borders and the gaps between cells are pad_value (white).
  EXPECT_TRUE((grid.narrow(1, 0, pad) == 1.0f).all().item<bool>());
  EXPECT_TRUE((grid.narrow(2, 0, pad) == 1.0f).all().item<bool>());
  EXPECT_TRUE((grid.narrow(1, pad + s, pad) == 1.0f).all().item<bool>());
  EXPECT_TRUE((grid.narrow(2, side - pad, pad) == 1.0f).all().item<bool>());
  EXPECT_EQ(grid.eq(1.0f).sum().item<int64_t>(), c * (side * side - n * s * s));

  // A partial last row: 5 images, 4 per row -> 2 rows, empty cells filled with pad_value.
  const auto partial = lf::make_grid(images.narrow(0, 0, 5), 4, pad, -1.0f);
  ASSERT_EQ(partial.sizes(), (std::vector<int64_t>{c, 2 * (s + pad) + pad, side}));
  EXPECT_TRUE(torch::equal(partial.narrow(1, pad + s + pad, s).narrow(2, pad, s), images[4]));
  EXPECT_TRUE(
      (partial.narrow(1, pad + s + pad, s).narrow(2, 2 * pad + s, s) == -1.0f).all().item<bool>());

  lf::save_grid(path("grid.png"), images, 4);
  EXPECT_EQ(lf::load_image(path("grid.png")).sizes(), (std::vector<int64_t>{c, side, side}));
  expect_image_error([&] { lf::make_grid(images[0], 4); }, {"[image::make_grid]", "[N,C,H,W]"});
}

TEST_F(ImageTest, IsImagePath) {
  EXPECT_TRUE(lf::is_image_path("a/b.png"));
  EXPECT_TRUE(lf::is_image_path("x.JPG"));
  EXPECT_TRUE(lf::is_image_path("x.Jpeg"));
  EXPECT_TRUE(lf::is_image_path("x.bmp"));
  EXPECT_FALSE(lf::is_image_path("x.gif"));
  EXPECT_FALSE(lf::is_image_path("png"));
  EXPECT_FALSE(lf::is_image_path("dir.png/file"));
}

TEST_F(ImageTest, HostileMissingFile) {
  const std::string missing = path("missing.png");
  expect_image_error([&] { lf::load_image(missing); }, {"[image::load]", missing, "no such file"});
  expect_image_error([&] { lf::load_image(dir_.string()); }, {"[image::load]", "no such file"});
}

TEST_F(ImageTest, HostileTruncatedPng) {
  lf::save_image(path("full.png"), torch::rand({3, 64, 64}) * 2 - 1);  // noise: a long IDAT
  const std::string bytes = lf::read_file(path("full.png"));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string cut = path("cut.png");
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));
  expect_image_error(
      [&] { lf::load_image(cut); },
      {"[image::load]", cut, "not a readable image (PNG chunk 'IDAT' at byte 33 claims",
       std::to_string(bytes.size() / 2 - 41) + " left in the file)"});
  write_bytes(cut, bytes.substr(0, 20));  // cut inside IHDR
  expect_image_error([&] { lf::load_image(cut); },
                     {"[image::load]", cut, "not a readable image ("});
}

TEST_F(ImageTest, HostileRandomBytesAndEmptyFile) {
  const std::string noise = path("noise.png");
  write_bytes(noise, std::string("this is not an image at all, just some text\x01\x02\x03", 47));
  expect_image_error([&] { lf::load_image(noise); },
                     {"[image::load]", noise, "not a readable image ("});
  const std::string empty = path("empty.jpg");
  write_bytes(empty, "");
  expect_image_error([&] { lf::load_image(empty); }, {"[image::load]", empty});
}

TEST_F(ImageTest, HostileHugeHeaderRefusedBeforeDecoding) {
  const std::string huge = path("huge.png");
  write_bytes(huge, png_header(100000, 100000));  // over stb's limits too
  expect_image_error([&] { lf::load_image(huge); },
                     {"[image::load]", huge, "100000x100000", "at most 16384 px per side"});
  // Within stb's own limits but over ours: refused by the size check, from the header alone.
  const std::string wide = path("wide.png");
  write_bytes(wide, png_header(20000, 16));
  expect_image_error([&] { lf::load_image(wide); },
                     {"[image::load]", wide, "20000x16", "at most 16384"});
}

// Found by fuzz/fuzz_image: stb sized its IDAT buffer from the chunk's stated length before
// reading it, so a 137-byte PNG whose IDAT claimed 1.1 GB allocated 2 GB. Refused before stb runs.
TEST_F(ImageTest, HostilePngChunkLongerThanTheFileIsRefusedBeforeDecoding) {
  lf::save_image(path("small.png"), torch::zeros({3, 8, 8}));
  std::string png = lf::read_file(path("small.png"));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png.replace(idat - 4, 4, std::string("\x45\x49\x44\x41", 4));  // 1162429505 bytes
  const std::string file = path("long_chunk.png");
  write_bytes(file, png);
  const std::string left = std::to_string(png.size() - (idat + 4));
  expect_image_error([&] { lf::load_image(file); },
                     {"[image::load]", file,
                      "not a readable image (PNG chunk 'IDAT' at byte " + std::to_string(idat - 4) +
                          " claims 1162429505 "
                          "bytes, " +
                          left + " left in the file)"});
}

// Found by fuzz/fuzz_image: stbi_info gives a top-down BMP's height negative, so a 30-byte BMP
// claiming 15616 x -16128 passed the size limits (checked as a negative product) and stb decoded
// 252 M pixels for 21 s. Refused now; and a real top-down BMP loads, rows in the right order.
TEST_F(ImageTest, TopDownBmpHeightsAreCheckedAsSizes) {
  const std::string hostile = path("top_down_bomb.bmp");
  write_bytes(
      hostile,
      std::string("BMz\0\0\0\0\xc1\0@\\\0\0\0(\0\0\0\0=\0\0\0\xc1\xff\xff\x01\0\x01\0", 30));
  expect_image_error(
      [&] { lf::load_image(hostile); },
      {"[image::load]", hostile, "header says 15616x16128, more pixels than a 30-byte BMP"});

  // A 2x3 gradient saved bottom-up by stb, then marked top-down with its rows reversed.
  const auto image = torch::linspace(-1, 1, 6).view({1, 2, 3}).expand({3, 2, 3}).contiguous();
  lf::save_image(path("bottom_up.bmp"), image);
  std::string bmp = lf::read_file(path("bottom_up.bmp"));
  const uint32_t offset = static_cast<uint8_t>(bmp[10]) | static_cast<uint8_t>(bmp[11]) << 8;
  const size_t row = (3 * 3 + 3) / 4 * 4;  // 3 px of 3 bytes, padded to 4
  const std::string rows = bmp.substr(offset, 2 * row);
  bmp.replace(offset, 2 * row, rows.substr(row, row) + rows.substr(0, row));
  bmp.replace(22, 4, std::string("\xfe\xff\xff\xff", 4));  // height -2
  const std::string top_down = path("top_down.bmp");
  write_bytes(top_down, bmp);
  const auto loaded = lf::load_image(top_down);
  ASSERT_EQ(loaded.sizes(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_TRUE(torch::allclose(loaded, lf::load_image(path("bottom_up.bmp"))));
}

// Found by fuzz/fuzz_image in CI, when stb still decoded JPEGs: a JPEG whose entropy-coded data is
// corrupted so that a marker ends the scan mid-block (stb then shifted a zero by 32 or more).
// libjpeg warns and fills in the lost blocks: the file decodes to the size its header states.
TEST_F(ImageTest, HostileJpegWhoseScanEndsMidBlockDecodesWithoutReadingPastIt) {
  const std::string file = std::string(LF_TEST_DATA_DIR) + "/images/jpeg_scan_past_marker.jpg";
  const torch::Tensor image = lf::load_image(file);
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::isfinite(image).all().item<bool>());
}

// Found by fuzz/fuzz_image in CI: Huffman tables whose code lengths do not form a prefix code. The
// stb_image 2.27 in Debian computed a symbol index outside its 256-entry arrays from them and
// aborted on an assert (or, built without asserts, read past the arrays: nothings/stb#1289). That
// is why JPEGs go to libjpeg-turbo (io/jpeg_decoder.h), which names the table as bad.
TEST_F(ImageTest, HostileJpegHuffmanTableThatIsNotAPrefixCodeIsAnError) {
  const std::string file =
      std::string(LF_TEST_DATA_DIR) + "/images/jpeg_huffman_symbol_out_of_range.jpg";
  for (const int64_t channels : {0, 1, 3})
    expect_image_error([&] { lf::load_image(file, channels); },
                       {"[image::load]", file, "Bogus Huffman table definition"});
}

// What stb never wrote: a one-component (gray) JPEG loads as stored with 1 channel, and an Adobe
// CMYK JPEG (libjpeg stores it as YCCK) loads as RGB = C * K / 255, or gray from that RGB.
TEST_F(ImageTest, GrayAndCmykJpegs) {
  const int h = 16, w = 24;
  std::vector<uint8_t> gray(h * w), cmyk(h * w * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      gray[y * w + x] = static_cast<uint8_t>(40 + 8 * x);
      uint8_t* p = &cmyk[(y * w + x) * 4];
      p[0] = static_cast<uint8_t>(60 + 6 * x), p[1] = static_cast<uint8_t>(200 - 5 * y);
      p[2] = 128, p[3] = static_cast<uint8_t>(255 - 4 * x);
    }
  const std::string gray_file = path("gray.jpg");
  write_bytes(gray_file, encode_with_libjpeg(gray.data(), w, h, 1, JCS_GRAYSCALE, JCS_GRAYSCALE));
  const torch::Tensor loaded_gray = lf::load_image(gray_file);
  ASSERT_EQ(loaded_gray.sizes(), (std::vector<int64_t>{1, h, w}));
  const torch::Tensor expected_gray =
      lf::from_uint8_hwc(torch::from_blob(gray.data(), {h, w, 1}, torch::kUInt8));
  EXPECT_LT((loaded_gray - expected_gray).abs().max().item<float>(), 4.0f / 127.5f);
  EXPECT_EQ(lf::load_image(gray_file, 3).size(0), 3);

  const std::string cmyk_file = path("cmyk.jpg");
  write_bytes(cmyk_file, encode_with_libjpeg(cmyk.data(), w, h, 4, JCS_CMYK, JCS_YCCK));
  const torch::Tensor c =
      torch::from_blob(cmyk.data(), {h, w, 4}, torch::kUInt8).toType(torch::kFloat64);
  const torch::Tensor k = c.narrow(2, 3, 1);
  const torch::Tensor rgb = (c.narrow(2, 0, 3) * k / 255.0).permute({2, 0, 1}) / 127.5 - 1.0;
  const torch::Tensor loaded = lf::load_image(cmyk_file).toType(torch::kFloat64);
  ASSERT_EQ(loaded.sizes(), rgb.sizes());
  EXPECT_LT((loaded - rgb).abs().max().item<double>(), 6.0 / 127.5);
  const torch::Tensor luma = (rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) / 256;
  const torch::Tensor loaded_luma = lf::load_image(cmyk_file, 1).toType(torch::kFloat64);
  ASSERT_EQ(loaded_luma.sizes(), (std::vector<int64_t>{1, h, w}));
  EXPECT_LT((loaded_luma[0] - luma).abs().max().item<double>(), 6.0 / 127.5);
}

// A progressive scan can refine one band of coefficients by one bit: a hostile file can hold
// thousands of scans, each a pass over the whole image. Like TurboJPEG, load_image stops after 500.
// Gray, 16x16; the DC scan, then each AC coefficient alone in `refinements` + 1 scans.
std::vector<jpeg_scan_info> band_by_band_scans(int refinements) {
  std::vector<jpeg_scan_info> scans{{1, {0}, 0, 0, 0, 0}};
  for (int k = 1; k < 64; ++k) {
    scans.push_back({1, {0}, k, k, 0, refinements});
    for (int al = refinements - 1; al >= 0; --al) scans.push_back({1, {0}, k, k, al + 1, al});
  }
  return scans;
}

TEST_F(ImageTest, HostileProgressiveJpegWithMoreThan500ScansIsRefused) {
  std::vector<uint8_t> gray(16 * 16);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>((i * 37) % 256);
  const std::vector<jpeg_scan_info> few = band_by_band_scans(2), many = band_by_band_scans(8);
  ASSERT_EQ(few.size(), 1u + 63 * 3);
  ASSERT_EQ(many.size(), 1u + 63 * 9);
  const std::string ok = path("few_scans.jpg"), bad = path("many_scans.jpg");
  write_bytes(ok, encode_with_libjpeg(gray.data(), 16, 16, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, few));
  write_bytes(bad, encode_with_libjpeg(gray.data(), 16, 16, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, many));
  const torch::Tensor image = lf::load_image(ok);
  const torch::Tensor expected =
      lf::from_uint8_hwc(torch::from_blob(gray.data(), {16, 16, 1}, torch::kUInt8));
  EXPECT_LT((image - expected).abs().max().item<float>(), 4.0f / 127.5f);  // quality 100
  expect_image_error([&] { lf::load_image(bad); },
                     {"[image::load]", bad,
                      "cannot decode (a progressive JPEG with more than 500 "
                      "scans)"});
}

// Found running fuzz/fuzz_image on a seed JPEG with a patched header: stb decodes a truncated JPEG
// or BMP by filling in zeros, so a 744-byte file claiming 4000x4000 decoded to 16M pixels.
TEST_F(ImageTest, HostileHeadersClaimingMorePixelsThanTheFileHolds) {
  lf::save_image(path("small.jpg"), torch::zeros({3, 8, 8}));
  std::string jpeg = lf::read_file(path("small.jpg"));
  const size_t sof = jpeg.find("\xff\xc0");  // baseline frame header: FF C0 len P Y X
  ASSERT_NE(sof, std::string::npos);
  jpeg.replace(sof + 5, 4, std::string("\x0f\xa0\x0f\xa0", 4));  // 4000 x 4000
  const std::string bomb = path("bomb.jpg");
  write_bytes(bomb, jpeg);
  expect_image_error([&] { lf::load_image(bomb); },
                     {"[image::load]", bomb, "header says 4000x4000, more pixels than a",
                      "-byte JPEG can hold (at most 512 per byte)"});

  lf::save_image(path("small.bmp"), torch::zeros({3, 4, 4}));
  std::string bmp = lf::read_file(path("small.bmp"));
  bmp.replace(18, 8, std::string("\x00\x10\x00\x00\x00\x10\x00\x00", 8));  // 4096 x 4096
  const std::string bmp_bomb = path("bomb.bmp");
  write_bytes(bmp_bomb, bmp);
  expect_image_error([&] { lf::load_image(bmp_bomb); },
                     {"[image::load]", bmp_bomb, "header says 4096x4096", "(at most 8 per byte)"});

  // Found by fuzz/fuzz_image: a Huffman table declaring over 256 codes made Debian's stb write past
  // its arrays (UBSan: index 257 out of bounds for 'stbi_uc[257]'). libjpeg refuses the table.
  std::string tables = lf::read_file(path("small.jpg"));
  const size_t dht = tables.find("\xff\xc4");
  ASSERT_NE(dht, std::string::npos);
  tables[dht + 5 + 14] = static_cast<char>(200);  // code counts of lengths 15 and 16
  tables[dht + 5 + 15] = static_cast<char>(200);
  const std::string huffman = path("huffman.jpg");
  write_bytes(huffman, tables);
  expect_image_error([&] { lf::load_image(huffman); },
                     {"[image::load]", huffman, "not a readable image (Bogus Huffman table"});

  // Formats stb knows but we neither write nor need are not decoded at all.
  const std::string gif = path("x.png");
  write_bytes(gif, std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14));
  expect_image_error([&] { lf::load_image(gif); },
                     {"[image::load]", gif, "not a readable image (not a PNG, JPEG or BMP file)"});
}

// Found by fuzz/fuzz_image: an empty IDAT chunk before any image data made stb call memcpy with a
// null destination and length 0 (UBSan nonnull-attribute, harmless: see fuzz/CMakeLists.txt). A
// valid PNG may hold one; it decodes to the same pixels as without it.
TEST_F(ImageTest, AnEmptyIdatChunkBeforeTheDataDecodesTheSame) {
  const auto image = torch::linspace(-1, 1, 64).reshape({1, 8, 8});
  const std::string png = lf::encode_png(image);
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  // length 0, type IDAT, CRC-32 of "IDAT"; inserted before the chunk's 4-byte length.
  const std::string empty_idat("\x00\x00\x00\x00IDAT\x35\xaf\x06\x1e", 12);
  const std::string with_empty = png.substr(0, idat - 4) + empty_idat + png.substr(idat - 4);
  const auto plain = lf::decode_image(png, "plain.png");
  const auto decoded = lf::decode_image(with_empty, "with_empty.png");
  EXPECT_TRUE(torch::equal(plain, decoded));
}

TEST_F(ImageTest, HostileBadTensorsOnSave) {
  const std::string out = path("out.png");
  expect_image_error(
      [&] {
        lf::save_image(out, torch::zeros({5, 8, 8}));
      },
      {"[image::save]", out, "expected [C,H,W] with C in {1,3}, got [5, 8, 8]"});
  expect_image_error(
      [&] {
        lf::save_image(out, torch::zeros({8, 8}));
      },
      {"[image::save]", "[8, 8]"});
  expect_image_error([&] { lf::save_image(out, torch::zeros({2, 3, 8, 8})); }, {"[2, 3, 8, 8]"});
  expect_image_error(
      [&] {
        lf::save_image(out, torch::zeros({3, 8, 8}, torch::kUInt8));
      },
      {"[image::save]", "floating-point"});
  expect_image_error(
      [&] {
        lf::save_image(path("out.tiff"), torch::zeros({3, 8, 8}));
      },
      {"[image::save]", "unknown extension '.tiff'"});
  EXPECT_EQ(dir_entries(), 0u);
}

TEST_F(ImageTest, FailedSaveLeavesNoFile) {
  // A failed save over an existing image keeps the old one intact and leaves no temp file.
  const std::string out = path("keep.png");
  const auto image = quantised_random(3, 8, 8);
  lf::save_image(out, image);
  EXPECT_THROW(lf::save_image(out, torch::zeros({5, 8, 8})), lf::Error);
  EXPECT_TRUE(torch::equal(lf::load_image(out), image));
  EXPECT_EQ(dir_entries(), 1u);

  // Too large to load back (stb's JPEG writer would silently truncate 70000 to 16 bits).
  expect_image_error(
      [&] {
        lf::save_image(path("long.jpg"), torch::zeros({1, 1, 70000}));
      },
      {"[image::save]", "1x70000", "at most 16384"});
  EXPECT_FALSE(fs::exists(path("long.jpg")));
  // An unwritable directory.
  EXPECT_THROW(lf::save_image(path("no_such_dir/x.png"), image), lf::Error);
  EXPECT_EQ(dir_entries(), 1u);
}

}  // namespace
