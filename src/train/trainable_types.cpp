// The image models' table and the priors' together.
#include "train/trainable_types.h"

#include "priors/prior_registry.h"

namespace lf {

const std::vector<ModelType>& trainable_types() {
  static const std::vector<ModelType> types = [] {
    std::vector<ModelType> all = image_model_types();
    all.insert(all.end(), prior_types().begin(), prior_types().end());
    return all;
  }();
  return types;
}

TrainablePtr make_trainable(const Config& model_config) {
  return build_model(trainable_types(), model_config);
}

std::vector<std::string> model_names() {
  return model_type_names(trainable_types());
}

}  // namespace lf
