// The trainer's two parameter groups, their optimizers and the discriminator freeze of a GAN step,
// shared by the trainer and `latentforge bench train` so that the benchmark measures the step the
// trainer runs.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "models/trainable.h"
#include "train/train_options.h"

namespace lf {

// The discriminator's trainable parameters (a VQGAN / KL model's; empty for the others) and the
// generator's: every other parameter that trains. Each group gets its own optimizer.
struct ParameterGroups {
  std::vector<torch::Tensor> generator, discriminator;
};
ParameterGroups parameter_groups(TrainableImpl& model);

// The optimizer the options name (adam or adamw, with their lr, betas and weight decay).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options,
                                                        const std::vector<torch::Tensor>& params);

// Turns requires_grad off for a set of parameters while alive (the discriminator during the
// generator step, as Lightning's toggle_optimizer does): no gradients are computed or kept for it.
class FrozenParameters {
 public:
  explicit FrozenParameters(const std::vector<torch::Tensor>& params);
  ~FrozenParameters();
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
};

}  // namespace lf
