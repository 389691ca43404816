// ActNorm (taming/modules/util.py): per-channel affine y = scale * (x + loc), initialised from the
// first training batch so that its output has zero mean and unit variance per channel.
#pragma once

#include <torch/torch.h>

namespace lf {

class ActNormImpl : public torch::nn::Module {
 public:
  explicit ActNormImpl(int64_t num_features);

  // x: [N, C, H, W] or [N, C] -> same shape. In training mode the first call initialises loc and
  // scale from x (mean, unbiased std + 1e-6 over all but the channel dimension).
  torch::Tensor forward(torch::Tensor x);
  bool initialized() const { return initialized_.item<uint8_t>() != 0; }

  torch::Tensor loc;    // [1, C, 1, 1] parameter "loc", 0 until initialised
  torch::Tensor scale;  // [1, C, 1, 1] parameter "scale", 1 until initialised

 private:
  void initialize(const torch::Tensor& x);  // x: [N, C, H, W]

  int64_t num_features_;
  torch::Tensor initialized_;  // [] uint8 buffer "initialized", as in taming's checkpoints
};
TORCH_MODULE(ActNorm);

}  // namespace lf
