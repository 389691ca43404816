// A folder of images (png/jpg/bmp, searched recursively), each centre-cropped and resized on load:
// the seeds' CelebA recipe. Sub-folders of the root, when all images live in them, are classes.
#pragma once

#include "data/dataset.h"

namespace lf {

struct ImageFolderOptions {
  std::string root;
  int64_t image_size = 64;  // output is image_size x image_size
  int64_t channels = 3;     // 1 or 3
};

class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(ImageFolderOptions options);

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  std::vector<int64_t> image_shape() const override;
  torch::Tensor get_image(int64_t index) const override;
  int64_t get_label(int64_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  std::vector<std::string> class_names() const override { return classes_; }
  std::string describe() const override;
  const std::vector<std::string>& files() const { return files_; }

 private:
  ImageFolderOptions options_;
  std::vector<std::string> files_;  // sorted
  std::vector<int64_t> labels_;     // per file; empty without classes
  std::vector<std::string> classes_;
};

}  // namespace lf
