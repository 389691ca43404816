// The table of prior types (gpt, pixelcnn), in the form of models/model_registry.h.
#pragma once

#include "models/model_registry.h"

namespace lf {

const std::vector<ModelType>& prior_types();

}  // namespace lf
