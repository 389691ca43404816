// What a prior trains on: the code-index maps of a dataset under a trained VQ first stage (and,
// for image conditioning, under the condition's own VQ model), encoded once and cached in the
// first stage's run folder.
#pragma once

#include <string>

#include "data/dataset.h"
#include "data/dataset_factory.h"
#include "models/autoencoder.h"

namespace lf {

// Code maps with labels (and condition codes) as a dataset: batches fill codes, labels and
// cond_codes; there are no images.
class CodeDataset : public Dataset {
 public:
  // codes: [N, h, w] int64; labels: [N] int64 (-1: none); cond_codes: [N, hc, wc] or undefined.
  CodeDataset(torch::Tensor codes, torch::Tensor labels, torch::Tensor cond_codes,
              int64_t num_classes, std::string description);
  int64_t size() const override { return codes_.size(0); }
  std::vector<int64_t> image_shape() const override;      // [1, h, w]: the code grid
  torch::Tensor get_image(int64_t index) const override;  // throws: code datasets have no images
  int64_t get_label(int64_t index) const override;
  int64_t num_classes() const override { return num_classes_; }
  std::string describe() const override { return description_; }
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const torch::Tensor& codes() const { return codes_; }
  const torch::Tensor& cond_codes() const { return cond_codes_; }

 private:
  torch::Tensor codes_, labels_, cond_codes_;
  int64_t num_classes_;
  std::string description_;
};

// Encodes every image of `data` with a VQ model: [N, h, w] int64 on the CPU.
torch::Tensor encode_codes(AutoencoderImpl& stage1, const Dataset& data, torch::Device device,
                           int64_t batch_size = 256);

struct EncodedSplit {
  torch::Tensor codes;    // [N, h, w] int64
  torch::Tensor labels;   // [N] int64
  int64_t num_codes = 0;  // the model's codebook size K
  int64_t num_classes = 0;
};

// The codes of the dataset `spec` under the VQ model at `stage1_path` (a run folder, checkpoint
// folder or weights file), read from <weights folder>/codes/ when they were encoded before with
// the same weights and data, else encoded now and cached there.
EncodedSplit cached_codes(const std::string& stage1_path, const DatasetSpec& spec,
                          torch::Device device);

}  // namespace lf
