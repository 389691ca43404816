// The dataset interface: random access to images as float [C,H,W] in [-1, 1] with optional labels.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lf {

struct Batch {
  torch::Tensor images;   // [B, C, H, W] float32 in [-1, 1]
  torch::Tensor labels;   // [B] int64, -1 where the dataset has no labels
  torch::Tensor indices;  // [B] int64 positions in the dataset
  // Code-index datasets (what a prior trains on) fill these instead of images:
  torch::Tensor codes;       // [B, h, w] int64 code indices of a first-stage model
  torch::Tensor cond_codes;  // [B, hc, wc] int64 code indices of the condition image, or undefined

  int64_t size() const { return indices.size(0); }
  // A copy with every defined tensor on `device`.
  Batch to(torch::Device device) const;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual std::vector<int64_t> image_shape() const = 0;      // [C, H, W]
  virtual torch::Tensor get_image(int64_t index) const = 0;  // [C, H, W]
  virtual int64_t get_label(int64_t index) const { return -1; }
  virtual int64_t num_classes() const { return 0; }
  virtual std::vector<std::string> class_names() const { return {}; }
  virtual std::string describe() const = 0;
  // Must be thread-safe: data loader workers call it concurrently. Default: stack get_image().
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;

 protected:
  void check_index(int64_t index, const char* where) const;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

}  // namespace lf
