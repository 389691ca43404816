// Defaults of the autoencoder interface.
#include "models/autoencoder.h"

#include "core/error.h"

namespace lf {

torch::Tensor AutoencoderImpl::sample(int64_t n) {
  const std::string name = kind();
  fail((name + "::sample").c_str(),
       "a {} has no prior of its own; sample from a VAE, or train a prior (PixelCNN, transformer) "
       "over its codes and decode those",
       name);
}

}  // namespace lf
