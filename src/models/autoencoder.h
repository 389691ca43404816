// The interface every image autoencoder implements (AE, VAE, VQ-VAE, VQGAN, the KL autoencoder), so
// training, evaluation and the CLI treat them alike.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/trainable.h"

namespace lf {

class AutoencoderImpl : public TrainableImpl {
 public:
  // x: [N, C, H, W] in [-1, 1]; computes the training loss (training-mode side effects allowed).
  virtual TrainOutput train_step(const torch::Tensor& x) = 0;
  TrainOutput train_batch(const Batch& batch) override { return train_step(batch.images); }
  // Deterministic encode: AE {"latents"}; VAE {"mean", "logvar"}; VQ {"indices" [N,h,w] int64,
  // "latents"}.
  virtual TensorMap encode(const torch::Tensor& x) = 0;
  // Inverse of encode: takes "latents" (AE, VAE: mean is accepted too) or "indices" (VQ).
  virtual torch::Tensor decode(const TensorMap& code) = 0;
  // x -> decode(encode(x)) [N, C, H, W]
  virtual torch::Tensor reconstruct(const torch::Tensor& x) { return decode(encode(x)); }
  // Draws n images from the model's own prior (VAE: z ~ N(0, I)); others throw lf::Error.
  virtual torch::Tensor sample(int64_t n);
};

using AutoencoderPtr = std::shared_ptr<AutoencoderImpl>;

}  // namespace lf
