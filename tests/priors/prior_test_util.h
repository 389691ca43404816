// Helpers shared by the prior tests: a random condition that fits a prior.
#pragma once

#include <torch/torch.h>

#include "priors/prior.h"

namespace lf::test {

// Labels cycling through the classes (class-conditional priors) and random condition codes on the
// prior's condition grid (image-conditional priors), for n samples.
template <typename PriorHolder>
PriorCondition condition(const PriorHolder& model, int64_t n) {
  const PriorImpl& prior = *model;
  PriorCondition cond;
  if (prior.num_classes() > 0) cond.labels = torch::arange(n) % prior.num_classes();
  if (prior.cond_num_codes() > 0)
    cond.cond_codes =
        torch::randint(prior.cond_num_codes(), {n, prior.cond_grid()[0], prior.cond_grid()[1]});
  return cond;
}

}  // namespace lf::test
