// The PatchGAN discriminator of VQGAN and the SD autoencoders (taming's NLayerDiscriminator): 4x4
// convs, stride 2 then 1, LeakyReLU(0.2), BatchNorm or ActNorm; one logit per overlapping patch.
#pragma once

#include <torch/torch.h>

#include "io/config.h"

namespace lf {

struct PatchDiscriminatorOptions {
  TORCH_ARG(int64_t, input_nc) = 3;
  TORCH_ARG(int64_t, ndf) = 64;          // filters of the first conv; doubled per layer, at most 8x
  TORCH_ARG(int64_t, n_layers) = 3;      // stride-2 convs after the first one, minus one
  TORCH_ARG(bool, use_actnorm) = false;  // ActNorm instead of BatchNorm2d (then convs get a bias)
};

class PatchDiscriminatorImpl : public torch::nn::Module {
 public:
  // Initialised like taming's weights_init: conv weights N(0, 0.02) (biases keep PyTorch's default
  // uniform init), BatchNorm weights N(1, 0.02) and biases 0; ActNorm starts at loc 0, scale 1.
  explicit PatchDiscriminatorImpl(PatchDiscriminatorOptions options = {});

  // x: [N, input_nc, H, W] -> logits [N, 1, H', W'] (H' = H/2^n_layers - 2 for H divisible).
  torch::Tensor forward(const torch::Tensor& x);
  const PatchDiscriminatorOptions& options() const { return options_; }

  // "main.0" conv, "main.1" LeakyReLU, then conv/norm/LeakyReLU triples, "main.<last>" conv to 1:
  // the keys of taming's checkpoints (main.0.weight, main.2.weight, main.3.running_mean, ...).
  torch::nn::Sequential main{nullptr};

 private:
  PatchDiscriminatorOptions options_;
};
TORCH_MODULE(PatchDiscriminator);

}  // namespace lf
