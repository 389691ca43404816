// Name -> factory registry of models and presets: adding a model is one file plus one line here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/autoencoder.h"

namespace lf {

// Builds a model from a config mapping: {type: vqvae, preset: fashion, ...overrides of options}.
// "type" picks the family, "preset" (optional) the starting options, other keys override them.
// Any trainable type: autoencoders, priors (pixelcnn, gpt) and the classifier.
TrainablePtr make_trainable(const Config& model_config);
// The same, for the image autoencoders only (other types are refused with a clear error).
AutoencoderPtr make_model(const Config& model_config);

// Known (type, preset) names, for --help and error messages.
std::vector<std::string> model_names();

}  // namespace lf
