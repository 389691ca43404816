// Subcommand inputs/outputs: images or .safetensors with the "images" key.
#include "io/tensor_io.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"

namespace lf {
namespace {

TEST(TensorIo, SafetensorsRoundTrip) {
  const std::string path = ::testing::TempDir() + "/batch.safetensors";
  auto images = torch::rand({3, 1, 8, 8}) * 2 - 1;
  write_images(path, images);
  EXPECT_TRUE(torch::equal(read_images(path), images));
}

TEST(TensorIo, ImageFilesBecomeBatchesOfOne) {
  const std::string path = ::testing::TempDir() + "/one.png";
  auto image = torch::rand({1, 3, 5, 7}) * 2 - 1;
  write_images(path, image);
  const auto back = read_images(path);
  EXPECT_EQ(back.sizes(), (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_LT((back - image).abs().max().item<float>(), 1.0f / 127.5f + 1e-6f);
}

TEST(TensorIo, ManyImagesToPngMakesAGrid) {
  const std::string path = ::testing::TempDir() + "/grid.png";
  write_images(path, torch::zeros({16, 1, 28, 28}), 4);
  EXPECT_EQ(load_image(path).sizes(), (std::vector<int64_t>{1, 122, 122}));
}

TEST(TensorIo, WrongKeysShapesAndExtensionsAreClearErrors) {
  const std::string dir = ::testing::TempDir();
  save_safetensors(dir + "/other.safetensors", {{"latents", torch::zeros({1, 4, 2, 2})}});
  try {
    read_images(dir + "/other.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'images' (has: latents)"), std::string::npos)
        << e.what();
  }
  save_safetensors(dir + "/flat.safetensors", {{"images", torch::zeros({4, 8})}});
  EXPECT_THROW(read_images(dir + "/flat.safetensors"), Error);
  save_safetensors(dir + "/ints.safetensors",
                   {{"images", torch::zeros({1, 1, 2, 2}, torch::kInt64)}});
  EXPECT_THROW(read_images(dir + "/ints.safetensors"), Error);
  EXPECT_THROW(read_images(dir + "/file.txt"), Error);
  EXPECT_THROW(write_images(dir + "/x.png", torch::zeros({2, 2})), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.png"));
}

}  // namespace
}  // namespace lf
