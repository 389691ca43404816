// Defaults of the autoencoder interface.
#include "models/autoencoder.h"

#include "core/error.h"

namespace lf {

torch::Tensor AutoencoderImpl::sample(int64_t n) {
  const std::string name = kind();
  fail((name + "::sample").c_str(),
       "a {} has no prior of its own; train a prior over its codes (configs/gpt_fashion.yaml, "
       "configs/pixelcnn_fashion.yaml) and sample with --prior RUN",
       name);
}

}  // namespace lf
