// Name -> factory tables of model types and presets. This layer's table holds the image
// autoencoders and the classifier; the priors have theirs above (priors/prior_registry.h), and
// train/trainable_types.h builds any of them. Adding a model is one file plus one line in a table.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/autoencoder.h"

namespace lf {

// One model type: its name, its presets and how to build it from a config mapping.
struct ModelType {
  const char* type;
  std::vector<std::string> (*presets)();
  TrainablePtr (*build)(const Json& config);
};

// Starts from the named preset (or the defaults) and applies every other key as an option.
template <typename Model, typename Options, Options (*preset)(const std::string&)>
TrainablePtr build_from_preset(const Json& config);

// ae, vae, vqvae, vqgan, autoencoder_kl and classifier.
const std::vector<ModelType>& image_model_types();

// Builds a model from a config mapping {type: vqvae, preset: fashion, ...overrides of options}
// with one of `types`: "type" picks the entry, "preset" (optional) the starting options, other
// keys override them. Unknown types are refused, naming the known ones.
TrainablePtr build_model(const std::vector<ModelType>& types, const Config& model_config);

// The image autoencoders only: other types (the classifier) are refused with a clear error.
AutoencoderPtr make_model(const Config& model_config);

// "type" and "type:preset" names of `types`, for --help and error messages.
std::vector<std::string> model_type_names(const std::vector<ModelType>& types);

// ---- implementation -----------------------------------------------------------------------------

void fail_preset(const Json& preset);  // "preset: expected a string"

template <typename Model, typename Options, Options (*preset)(const std::string&)>
TrainablePtr build_from_preset(const Json& config) {
  Options options;
  if (const auto it = config.find("preset"); it != config.end()) {
    if (!it->is_string()) fail_preset(*it);
    options = preset(it->get<std::string>());
  }
  Json overrides = config;
  overrides.erase("type");
  overrides.erase("preset");
  from_json(overrides, options);
  return std::make_shared<Model>(options);
}

}  // namespace lf
