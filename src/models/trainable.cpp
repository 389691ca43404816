// Defaults of the trainable interface.
#include "models/trainable.h"

#include "core/error.h"

namespace lf {

TrainOutput TrainableImpl::discriminator_step(const torch::Tensor&, const torch::Tensor&) {
  fail((kind() + "::discriminator_step").c_str(), "a {} has no discriminator", kind());
}

}  // namespace lf
