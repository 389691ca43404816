// Edge maps ("sketches") of images: the condition images of sketch -> garment synthesis. Sobel
// gradient magnitude of the grey image, thresholded to white lines on black, in [-1, 1].
#pragma once

#include "data/dataset.h"

namespace lf {

// images: [N, C, H, W] in [-1, 1] -> [N, 1, H, W] in {-1, 1}. `threshold` is on the Sobel magnitude
// of the [0, 1] grey image (a full black-to-white step gives 4).
torch::Tensor edge_map(const torch::Tensor& images, double threshold = 0.8);

// Wraps a dataset: the same items and labels, images replaced by their edge maps.
class EdgeMapDataset : public Dataset {
 public:
  explicit EdgeMapDataset(DatasetPtr inner) : inner_(std::move(inner)) {}
  int64_t size() const override { return inner_->size(); }
  std::vector<int64_t> image_shape() const override;
  torch::Tensor get_image(int64_t index) const override;
  int64_t get_label(int64_t index) const override { return inner_->get_label(index); }
  int64_t num_classes() const override { return inner_->num_classes(); }
  std::vector<std::string> class_names() const override { return inner_->class_names(); }
  std::string describe() const override { return "edge maps of " + inner_->describe(); }
  Batch get_batch(const std::vector<int64_t>& indices) const override;

 private:
  DatasetPtr inner_;
};

}  // namespace lf
