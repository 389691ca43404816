// Image-folder dataset: listing, classes from sub-folders, crop + resize, bad files.
#include "data/image_folder_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/data_loader.h"
#include "data/dataset_factory.h"
#include "io/atomic_file.h"
#include "io/image.h"

namespace lf {
namespace {

std::string make_folder(const std::string& name, bool with_classes) {
  const std::string dir = ::testing::TempDir() + "/folder_" + name;
  std::filesystem::remove_all(dir);
  for (const char* cls : {"cats", "dogs"}) {
    const std::string sub = with_classes ? dir + "/" + cls : dir;
    std::filesystem::create_directories(sub);
    for (int i = 0; i < 3; ++i) {
      // 40x60 RGB images (landscape): centre crop must take the middle 40x40.
      auto image = torch::full({3, 40, 60}, -1.0f);
      image.narrow(2, 10, 40).fill_(std::string(cls) == "cats" ? 1.0f : 0.0f);
      save_image(sub + "/" + cls + std::to_string(i) + ".png", image);
    }
  }
  return dir;
}

TEST(ImageFolderDataset, ClassesFromSubfolders) {
  ImageFolderOptions options;
  options.root = make_folder("classes", true);
  options.image_size = 16;
  ImageFolderDataset dataset(options);
  EXPECT_EQ(dataset.size(), 6);
  EXPECT_EQ(dataset.class_names(), (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(dataset.get_label(0), 0);
  EXPECT_EQ(dataset.get_label(5), 1);
  const auto image = dataset.get_image(0);
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{3, 16, 16}));
  // The crop kept only the bright middle square: no black border left.
  EXPECT_GT(image.min().item<float>(), 0.95f);
}

TEST(ImageFolderDataset, FlatFolderHasNoLabelsAndLoadsThroughTheLoader) {
  ImageFolderOptions options;
  options.root = make_folder("flat", false);
  options.image_size = 8;
  options.channels = 1;
  auto dataset = std::make_shared<ImageFolderDataset>(options);
  EXPECT_EQ(dataset->num_classes(), 0);
  EXPECT_EQ(dataset->get_label(2), -1);
  DataLoaderOptions loader_options;
  loader_options.batch_size = 3;
  loader_options.num_workers = 2;
  DataLoader loader(dataset, loader_options);
  const auto batch = loader.next();
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_EQ(batch.labels[0].item<int64_t>(), -1);
}

TEST(ImageFolderDataset, FactoryPicksFoldersAndLimits) {
  DatasetSpec spec;
  spec.root = make_folder("factory", true);
  spec.image_size = 8;
  spec.limit = 4;
  const auto dataset = open_dataset(spec);
  EXPECT_EQ(dataset->size(), 4);
  EXPECT_EQ(dataset->image_shape(), (std::vector<int64_t>{3, 8, 8}));
  EXPECT_THROW(dataset->get_image(4), Error);
  spec.root = "/nonexistent";
  EXPECT_THROW(open_dataset(spec), Error);
}

TEST(ImageFolderDataset, BadFolderAndBadFilesAreClearErrors) {
  ImageFolderOptions options;
  options.root = ::testing::TempDir() + "/folder_empty";
  std::filesystem::remove_all(options.root);
  std::filesystem::create_directories(options.root);
  EXPECT_THROW(ImageFolderDataset{options}, Error);
  write_file_atomic(options.root + "/broken.png", "not a png at all");
  ImageFolderDataset dataset(options);
  try {
    dataset.get_image(0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lf
