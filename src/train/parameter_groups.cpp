// The generator / discriminator parameter groups and their optimizers: see parameter_groups.h.
#include "train/parameter_groups.h"

namespace lf {

ParameterGroups parameter_groups(TrainableImpl& model) {
  ParameterGroups groups;
  for (auto& p : model.discriminator_parameters())
    if (p.requires_grad()) groups.discriminator.push_back(p);
  const auto is_disc = [&](const torch::Tensor& p) {
    for (const auto& d : groups.discriminator)
      if (d.is_same(p)) return true;
    return false;
  };
  for (auto& p : model.parameters())
    if (p.requires_grad() && !is_disc(p)) groups.generator.push_back(p);
  return groups;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<torch::Tensor>& params) {
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params,
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::Adam>(
      params,
      torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
}

FrozenParameters::FrozenParameters(const std::vector<torch::Tensor>& params) : params_(params) {
  for (auto& p : params_) p.requires_grad_(false);
}

FrozenParameters::~FrozenParameters() {
  for (auto& p : params_) p.requires_grad_(true);
}

}  // namespace lf
