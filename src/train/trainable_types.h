// Every type of model that trains: the image models (models/model_registry.h) and the priors
// (priors/prior_registry.h), built by name.
#pragma once

#include "models/model_registry.h"

namespace lf {

// The image models' table followed by the priors'.
const std::vector<ModelType>& trainable_types();

// Builds any trainable type from a config mapping (see build_model).
TrainablePtr make_trainable(const Config& model_config);

// Known (type, preset) names of every trainable type, for --help and error messages.
std::vector<std::string> model_names();

}  // namespace lf
