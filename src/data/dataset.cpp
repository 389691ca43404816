// Default batch assembly for datasets.
#include "data/dataset.h"

#include "core/error.h"

namespace lf {

void Dataset::check_index(int64_t index, const char* where) const {
  if (index < 0 || index >= size()) fail(where, "index {} out of range [0, {})", index, size());
}

Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<torch::Tensor> images;
  images.reserve(indices.size());
  auto labels = torch::empty({static_cast<int64_t>(indices.size())}, torch::kInt64);
  auto* label_ptr = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) {
    images.push_back(get_image(indices[i]));
    label_ptr[i] = get_label(indices[i]);
  }
  Batch batch;
  batch.images = torch::stack(images);
  batch.labels = labels;
  batch.indices = torch::tensor(indices, torch::kInt64);
  return batch;
}

Batch Batch::to(torch::Device device) const {
  const auto move = [device](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  Batch out;
  out.images = move(images);
  out.labels = move(labels);
  out.indices = indices;
  out.codes = move(codes);
  out.cond_codes = move(cond_codes);
  return out;
}

}  // namespace lf
