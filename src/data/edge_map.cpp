// Sobel edge maps and the dataset wrapper that serves them.
#include "data/edge_map.h"

#include "core/error.h"

namespace lf {

torch::Tensor edge_map(const torch::Tensor& images, double threshold) {
  if (images.dim() != 4)
    fail("edge_map", "expected images [N, C, H, W], got {}", shape_str(images.sizes()));
  const auto grey = ((images.to(torch::kFloat32) + 1) / 2).mean(1, /*keepdim=*/true);
  const auto sobel_x =
      torch::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}, grey.options())
          .view({1, 1, 3, 3});
  const auto sobel_y = sobel_x.transpose(2, 3).contiguous();
  const auto padded = torch::replication_pad2d(grey, {1, 1, 1, 1});
  const auto gx = torch::conv2d(padded, sobel_x), gy = torch::conv2d(padded, sobel_y);
  const auto magnitude = torch::sqrt(gx * gx + gy * gy);
  return (magnitude > threshold).to(torch::kFloat32) * 2 - 1;
}

std::vector<int64_t> EdgeMapDataset::image_shape() const {
  auto shape = inner_->image_shape();
  shape[0] = 1;
  return shape;
}

torch::Tensor EdgeMapDataset::get_image(int64_t index) const {
  return edge_map(inner_->get_image(index).unsqueeze(0))[0];
}

Batch EdgeMapDataset::get_batch(const std::vector<int64_t>& indices) const {
  Batch batch = inner_->get_batch(indices);
  batch.images = edge_map(batch.images);
  return batch;
}

}  // namespace lf
