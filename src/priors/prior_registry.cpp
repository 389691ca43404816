// The table of prior types: type name -> presets and factory. One line per prior.
#include "priors/prior_registry.h"

#include "priors/gpt.h"
#include "priors/pixelcnn.h"

namespace lf {

const std::vector<ModelType>& prior_types() {
  static const std::vector<ModelType> entries = {
      {"gpt", gpt_preset_names, build_from_preset<GPTImpl, GPTOptions, gpt_preset>},
      {"pixelcnn", pixelcnn_preset_names,
       build_from_preset<PixelCNNImpl, PixelCNNOptions, pixelcnn_preset>},
  };
  return entries;
}

}  // namespace lf
