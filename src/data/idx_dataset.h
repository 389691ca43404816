// MNIST / Fashion-MNIST in IDX format (*-idx3-ubyte[.gz] images, *-idx1-ubyte[.gz] labels), read
// straight from gzip and held in memory as uint8.
#pragma once

#include "data/dataset.h"

namespace lf {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct IdxDatasetOptions {
  std::string root = kFashionMnistDir;  // folder with the four files
  std::string split = "train";          // "train" or "test" (files named t10k-*)
  int64_t image_size = 0;               // 0 keeps 28x28; otherwise resized (bilinear) once at load
  int64_t limit = 0;                    // 0 = all images; else the first `limit`
};

// Raw IDX readers (gzip or plain). Images: uint8 [N, rows, cols]; labels: uint8 [N] as int64.
torch::Tensor read_idx_images(const std::string& path);
torch::Tensor read_idx_labels(const std::string& path);

class IdxDataset : public Dataset {
 public:
  explicit IdxDataset(IdxDatasetOptions options);
  IdxDataset(torch::Tensor images_u8, torch::Tensor labels, std::string name);  // [N,1,H,W], [N]

  int64_t size() const override { return images_.size(0); }
  std::vector<int64_t> image_shape() const override;
  torch::Tensor get_image(int64_t index) const override;
  int64_t get_label(int64_t index) const override;
  int64_t num_classes() const override { return 10; }
  std::vector<std::string> class_names() const override;
  std::string describe() const override { return name_; }
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const torch::Tensor& images_u8() const { return images_; }  // [N, 1, H, W]
  const torch::Tensor& labels() const { return labels_; }     // [N] int64

 private:
  torch::Tensor images_;  // uint8 [N, 1, H, W]
  torch::Tensor labels_;  // int64 [N]
  std::string name_;
  bool fashion_ = true;
};

}  // namespace lf
