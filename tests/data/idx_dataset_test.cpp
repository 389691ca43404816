// IDX reading: the real Fashion-MNIST files and hostile ones.
#include "data/idx_dataset.h"

#include <gtest/gtest.h>

#include <zlib.h>
#include <numeric>

#include <filesystem>

#include "core/error.h"

namespace lf {
namespace {

std::string temp_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/idx_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

std::string images_file(uint32_t n, uint32_t rows, uint32_t cols, size_t payload) {
  std::string bytes = be32(0x803) + be32(n) + be32(rows) + be32(cols);
  for (size_t i = 0; i < payload; ++i) bytes.push_back(static_cast<char>(i % 251));
  return bytes;
}

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no lf::Error thrown";
  return "";
}

bool fashion_mnist_installed() {
  return std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
}

TEST(IdxDataset, LoadsFashionMnistTestSplit) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  IdxDatasetOptions options;
  options.split = "test";
  IdxDataset dataset(options);
  EXPECT_EQ(dataset.size(), 10000);
  EXPECT_EQ(dataset.image_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(dataset.class_names()[9], "Ankle boot");
  // Known facts of the test split: 1000 images per class, first label 9 (ankle boot).
  EXPECT_EQ(dataset.get_label(0), 9);
  EXPECT_EQ(torch::bincount(dataset.labels()).min().item<int64_t>(), 1000);
  const auto image = dataset.get_image(0);
  EXPECT_GE(image.min().item<float>(), -1.0f);
  EXPECT_LE(image.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(image.min().item<float>(), -1.0f);  // background is black
  const auto mean = dataset.images_u8().to(torch::kFloat32).mean().item<double>() / 255.0;
  EXPECT_NEAR(mean, 0.2868, 0.002);  // the split's published mean pixel value
}

TEST(IdxDataset, BatchMatchesItems) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  IdxDatasetOptions options;
  options.split = "test";
  options.limit = 100;
  IdxDataset dataset(options);
  const auto batch = dataset.get_batch({5, 17, 99});
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_TRUE(torch::equal(batch.images[1], dataset.get_image(17)));
  EXPECT_EQ(batch.labels[2].item<int64_t>(), dataset.get_label(99));
  EXPECT_THROW(dataset.get_batch({100}), Error);
  EXPECT_THROW(dataset.get_image(-1), Error);
}

TEST(IdxDataset, ResizesOnLoad) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  IdxDatasetOptions options;
  options.split = "test";
  options.limit = 1500;  // more than one chunk of the resize
  IdxDataset original(options);
  options.image_size = 32;
  IdxDataset dataset(options);
  EXPECT_EQ(dataset.image_shape(), (std::vector<int64_t>{1, 32, 32}));
  // Chunk by chunk, the same as bilinear resizing of all the images at once, rounded to uint8
  // levels (get_batch maps a level v to v / 127.5 - 1; these recover v exactly).
  std::vector<int64_t> all(1500);
  std::iota(all.begin(), all.end(), 0);
  const auto levels = [](const torch::Tensor& images) { return ((images + 1) * 127.5).round(); };
  const auto expected =
      torch::nn::functional::interpolate(levels(original.get_batch(all).images),
                                         torch::nn::functional::InterpolateFuncOptions()
                                             .size(std::vector<int64_t>{32, 32})
                                             .mode(torch::kBilinear)
                                             .align_corners(false))
          .round()
          .clamp(0, 255);
  EXPECT_TRUE(torch::equal(levels(dataset.get_batch(all).images), expected));
}

TEST(IdxDataset, ReadsPlainAndGzipFiles) {
  const std::string dir = temp_dir("plain");
  const std::string bytes = images_file(2, 3, 4, 24);
  write_gz(dir + "/a.gz", bytes);
  {
    std::FILE* f = std::fopen((dir + "/a").c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  const auto gz = read_idx_images(dir + "/a.gz");
  const auto plain = read_idx_images(dir + "/a");
  EXPECT_EQ(gz.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(torch::equal(gz, plain));
  EXPECT_EQ(gz[1][2][3].item<uint8_t>(), 23);
}

TEST(IdxDataset, HostileFilesAreClearErrors) {
  const std::string dir = temp_dir("hostile");
  EXPECT_NE(expect_error([&] { read_idx_images(dir + "/missing.gz"); }).find("no such file"),
            std::string::npos);

  write_gz(dir + "/truncated.gz", images_file(10, 28, 28, 100));
  EXPECT_NE(expect_error([&] { read_idx_images(dir + "/truncated.gz"); }).find("truncated"),
            std::string::npos);

  // A header claiming 16M images of 4096x4096 (2^48 bytes) must fail on the data, not allocate it.
  write_gz(dir + "/huge.gz", images_file(1u << 24, 4096, 4096, 64));
  EXPECT_NE(expect_error([&] { read_idx_images(dir + "/huge.gz"); }).find("truncated"),
            std::string::npos);

  write_gz(dir + "/magic.gz", be32(0x0801) + be32(1) + "x");
  EXPECT_NE(expect_error([&] { read_idx_images(dir + "/magic.gz"); }).find("expected 0x00000803"),
            std::string::npos);

  write_gz(dir + "/short.gz", "\x00\x00");
  EXPECT_NE(
      expect_error([&] { read_idx_images(dir + "/short.gz"); }).find("truncated while reading"),
      std::string::npos);

  write_gz(dir + "/trailing.gz", images_file(1, 2, 2, 5));
  EXPECT_NE(expect_error([&] { read_idx_images(dir + "/trailing.gz"); }).find("trailing data"),
            std::string::npos);

  // A corrupted gzip stream: valid header, garbage body.
  std::string good;
  {
    write_gz(dir + "/good.gz", images_file(4, 28, 28, 4 * 28 * 28));
    std::FILE* f = std::fopen((dir + "/good.gz").c_str(), "rb");
    for (int c; (c = std::fgetc(f)) != EOF;) good.push_back(static_cast<char>(c));
    std::fclose(f);
  }
  for (size_t i = 20; i < good.size() - 8; ++i) good[i] = static_cast<char>(good[i] ^ 0x5a);
  {
    std::FILE* f = std::fopen((dir + "/corrupt.gz").c_str(), "wb");
    std::fwrite(good.data(), 1, good.size(), f);
    std::fclose(f);
  }
  const std::string corrupt = expect_error([&] { read_idx_images(dir + "/corrupt.gz"); });
  EXPECT_NE(corrupt.find("corrupt.gz"), std::string::npos) << corrupt;
}

// Counts and sizes over the limits are refused from the header, naming the limit.
TEST(IdxDataset, AbsurdHeadersAreRefusedWithTheLimit) {
  const std::string dir = temp_dir("absurd");
  const std::pair<std::string, std::string> cases[] = {
      {images_file(1u << 31, 28, 28, 16),
       "header claims 2147483648 images, more than the limit "
       "of 16777216"},
      {images_file(10, 5000, 28, 16), "header claims images of 5000x28, expected 1 to 4096"},
      {images_file(10, 28, 0, 16), "header claims images of 28x0, expected 1 to 4096"},
      {be32(0x801) + be32(1u << 31) + "abc",
       "header claims 2147483648 labels, more than the "
       "limit of 16777216"},
  };
  for (const auto& [bytes, expected] : cases) {
    SCOPED_TRACE(expected);
    write_gz(dir + "/absurd.gz", bytes);
    const bool labels = bytes.compare(0, 4, be32(0x801)) == 0;
    const std::string message = expect_error([&] {
      labels ? read_idx_labels(dir + "/absurd.gz") : read_idx_images(dir + "/absurd.gz");
    });
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_NE(message.find("absurd.gz"), std::string::npos) << message;
  }
}

TEST(IdxDataset, MismatchedLabelsAndMissingFilesAreClearErrors) {
  const std::string dir = temp_dir("mismatch");
  write_gz(dir + "/train-images-idx3-ubyte.gz", images_file(3, 2, 2, 12));
  write_gz(dir + "/train-labels-idx1-ubyte.gz", be32(0x801) + be32(2) + std::string("\x01\x02", 2));
  IdxDatasetOptions options;
  options.root = dir;
  EXPECT_NE(expect_error([&] { IdxDataset d(options); }).find("3 images but 2 labels"),
            std::string::npos);
  options.split = "test";
  EXPECT_NE(expect_error([&] { IdxDataset d(options); }).find("no t10k-images-idx3-ubyte"),
            std::string::npos);
  options.split = "validation";
  EXPECT_NE(expect_error([&] { IdxDataset d(options); }).find("expected train or test"),
            std::string::npos);
}

}  // namespace
}  // namespace lf
