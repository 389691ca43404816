// Dataset selection by what the folder holds.
#include "data/dataset_factory.h"

#include <filesystem>

#include "data/edge_map.h"
#include "data/idx_dataset.h"
#include "data/image_folder_dataset.h"

namespace lf {

namespace {
bool holds_idx_files(const std::string& root) {
  std::error_code ec;
  for (const char* name : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
    for (const char* suffix : {"", ".gz"})
      if (std::filesystem::is_regular_file(root + "/" + name + suffix, ec)) return true;
  return false;
}

// Limits a dataset to its first n items without copying it.
class LimitedDataset : public Dataset {
 public:
  LimitedDataset(DatasetPtr inner, int64_t n) : inner_(std::move(inner)), n_(n) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> image_shape() const override { return inner_->image_shape(); }
  torch::Tensor get_image(int64_t i) const override {
    check_index(i, "dataset::get_image");
    return inner_->get_image(i);
  }
  int64_t get_label(int64_t i) const override { return inner_->get_label(i); }
  int64_t num_classes() const override { return inner_->num_classes(); }
  std::vector<std::string> class_names() const override { return inner_->class_names(); }
  std::string describe() const override {
    return fmt::format("{} (first {})", inner_->describe(), n_);
  }
  Batch get_batch(const std::vector<int64_t>& indices) const override {
    for (auto i : indices) check_index(i, "dataset::get_batch");
    return inner_->get_batch(indices);
  }

 private:
  DatasetPtr inner_;
  int64_t n_;
};
}  // namespace

DatasetSpec DatasetSpec::from_config(const Config& data) {
  DatasetSpec spec;
  spec.root = data.get<std::string>("root", spec.root);
  spec.split = data.get<std::string>("split", spec.split);
  spec.image_size = data.get<int64_t>("image_size", spec.image_size);
  spec.channels = data.get<int64_t>("channels", spec.channels);
  spec.limit = data.get<int64_t>("limit", spec.limit);
  spec.transform = data.get<std::string>("transform", spec.transform);
  return spec;
}

Json DatasetSpec::to_json() const {
  return {{"root", root},         {"split", split}, {"image_size", image_size},
          {"channels", channels}, {"limit", limit}, {"transform", transform}};
}

namespace {
DatasetPtr open_images(const DatasetSpec& spec);
}  // namespace

DatasetPtr open_dataset(const DatasetSpec& spec) {
  if (spec.transform != "" && spec.transform != "edges")
    fail("dataset", "transform: expected \"\" or \"edges\", got \"{}\"", spec.transform);
  auto dataset = open_images(spec);
  if (spec.transform == "edges") dataset = std::make_shared<EdgeMapDataset>(dataset);
  return dataset;
}

namespace {
DatasetPtr open_images(const DatasetSpec& spec) {
  const std::string root =
      spec.root.empty() || spec.root == "fashion-mnist" ? kFashionMnistDir : spec.root;
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec))
    fail("dataset", "{}: no such directory (expected IDX files or a folder of images)", root);
  if (holds_idx_files(root)) {
    IdxDatasetOptions options;
    options.root = root;
    options.split = spec.split;
    options.image_size = spec.image_size;
    options.limit = spec.limit;
    return std::make_shared<IdxDataset>(options);
  }
  ImageFolderOptions options;
  options.root = root;
  options.image_size = spec.image_size > 0 ? spec.image_size : 64;
  options.channels = spec.channels > 0 ? spec.channels : 3;
  DatasetPtr dataset = std::make_shared<ImageFolderDataset>(options);
  if (spec.limit > 0 && spec.limit < dataset->size())
    dataset = std::make_shared<LimitedDataset>(dataset, spec.limit);
  return dataset;
}

}  // namespace
DatasetPtr open_test_split(const DatasetSpec& spec) {
  DatasetSpec test = spec;
  test.split = "test";
  test.limit = 0;
  try {
    return open_dataset(test);
  } catch (const Error&) {
    return nullptr;  // image folders have no test split
  }
}

}  // namespace lf
