// The interface every trainable image autoencoder implements (AE, VAE, VQ-VAE; later VQGAN and
// the KL autoencoder), so training, evaluation and the CLI treat them alike.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"

namespace lf {

using TensorMap = std::map<std::string, torch::Tensor>;

struct TrainOutput {
  torch::Tensor loss;            // scalar to minimise
  torch::Tensor reconstruction;  // [N, C, H, W]
  std::map<std::string, double>
      logs;  // every loss term and statistic: "loss_rec", "loss_kl", "vq_perplexity", ...
};

class AutoencoderImpl : public torch::nn::Module {
 public:
  virtual ~AutoencoderImpl() = default;

  virtual std::string kind() const = 0;  // "ae", "vae", "vqvae"
  // x: [N, C, H, W] in [-1, 1]; computes the training loss (training-mode side effects allowed).
  virtual TrainOutput train_step(const torch::Tensor& x) = 0;
  // Deterministic encode: AE {"latents"}; VAE {"mean", "logvar"}; VQ {"indices" [N,h,w] int64,
  // "latents"}.
  virtual TensorMap encode(const torch::Tensor& x) = 0;
  // Inverse of encode: takes "latents" (AE, VAE: mean is accepted too) or "indices" (VQ).
  virtual torch::Tensor decode(const TensorMap& code) = 0;
  // x -> decode(encode(x)) [N, C, H, W]
  virtual torch::Tensor reconstruct(const torch::Tensor& x) { return decode(encode(x)); }
  // Draws n images from the model's own prior (VAE: z ~ N(0, I)); others throw lf::Error.
  virtual torch::Tensor sample(int64_t n);
  // The resolved hyperparameters, saved as config.json beside every checkpoint.
  virtual Json options_json() const = 0;

  // ---- Adversarial training (VQGAN, KL autoencoder); the defaults mean "no discriminator" ----
  // The trainer's global step, set before every train_step (discriminator start, schedules).
  virtual void set_step(int64_t step) { (void)step; }
  // Parameters of the second player: the trainer gives them their own optimizer and excludes them
  // from the generator's. Empty: no discriminator.
  virtual std::vector<torch::Tensor> discriminator_parameters() { return {}; }
  // Whether discriminator_step should run at this step (e.g. step >= disc_start).
  virtual bool discriminator_active(int64_t step) const {
    (void)step;
    return false;
  }
  // The discriminator's loss on real x and the generator step's reconstruction (detached here).
  virtual TrainOutput discriminator_step(const torch::Tensor& x,
                                         const torch::Tensor& reconstruction);
};

using AutoencoderPtr = std::shared_ptr<AutoencoderImpl>;

}  // namespace lf
