// The interface of everything the trainer can train: the image autoencoders, the priors over their
// code indices (PixelCNN, GPT) and the evaluation classifier. Each turns one batch into a loss.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "io/config.h"

namespace lf {

using TensorMap = std::map<std::string, torch::Tensor>;

struct TrainOutput {
  torch::Tensor loss;            // scalar to minimise
  torch::Tensor reconstruction;  // [N, C, H, W] (autoencoders; undefined otherwise)
  std::map<std::string, double>
      logs;  // every loss term and statistic: "loss_rec", "loss_kl", "vq_perplexity", ...
};

class TrainableImpl : public torch::nn::Module {
 public:
  virtual ~TrainableImpl() = default;

  virtual std::string kind() const = 0;  // the registry's type name: "vqvae", "gpt", ...
  // The training loss of one batch whose tensors are on the model's device (training-mode side
  // effects allowed).
  virtual TrainOutput train_batch(const Batch& batch) = 0;
  // The resolved hyperparameters, saved as config.json beside every checkpoint.
  virtual Json options_json() const = 0;

  // ---- Adversarial training (VQGAN, KL autoencoder); the defaults mean "no discriminator" ----
  // The trainer's global step, set before every train_batch (discriminator start, schedules).
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

using TrainablePtr = std::shared_ptr<TrainableImpl>;

}  // namespace lf
