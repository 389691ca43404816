// The table of model types: type name -> presets and factory. One line per model.
#include "models/model_registry.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/ae.h"
#include "models/autoencoder_kl.h"
#include "models/classifier.h"
#include "models/vae.h"
#include "models/vqgan.h"
#include "models/vqvae.h"
#include "priors/gpt.h"
#include "priors/pixelcnn.h"

namespace lf {
namespace {

// Starts from the named preset (or the defaults) and applies every other key as an option.
template <typename Model, typename Options, Options (*preset)(const std::string&)>
TrainablePtr build(const Json& config) {
  Options options;
  if (const auto it = config.find("preset"); it != config.end()) {
    if (!it->is_string()) fail("make_model", "preset: expected a string, got {}", it->dump());
    options = preset(it->get<std::string>());
  }
  Json overrides = config;
  overrides.erase("type");
  overrides.erase("preset");
  from_json(overrides, options);
  return std::make_shared<Model>(options);
}

struct ModelEntry {
  const char* type;
  std::vector<std::string> (*presets)();
  TrainablePtr (*build)(const Json& config);
};

const std::vector<ModelEntry>& registry() {
  static const std::vector<ModelEntry> entries = {
      {"ae", ae_preset_names, build<AEImpl, AEOptions, ae_preset>},
      {"vae", vae_preset_names, build<VAEImpl, VAEOptions, vae_preset>},
      {"vqvae", vqvae_preset_names, build<VQVAEImpl, VQVAEOptions, vqvae_preset>},
      {"vqgan", vqgan_preset_names, build<VQGANImpl, VQGANOptions, vqgan_preset>},
      {"autoencoder_kl", autoencoder_kl_preset_names,
       build<AutoencoderKLImpl, AutoencoderKLOptions, autoencoder_kl_preset>},
      {"gpt", gpt_preset_names, build<GPTImpl, GPTOptions, gpt_preset>},
      {"pixelcnn", pixelcnn_preset_names, build<PixelCNNImpl, PixelCNNOptions, pixelcnn_preset>},
      {"classifier", classifier_preset_names,
       build<ClassifierImpl, ClassifierOptions, classifier_preset>},
  };
  return entries;
}

std::vector<std::string> type_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.emplace_back(entry.type);
  return names;
}

}  // namespace

TrainablePtr make_trainable(const Config& model_config) {
  const Json& config = model_config.json();
  const auto type_it = config.is_object() ? config.find("type") : config.end();
  if (type_it == config.end() || !type_it->is_string())
    fail("make_model", "{}: expected a string 'type' (one of {}), got {}", model_config.source(),
         fmt::join(type_names(), ", "), config.dump());
  const auto type = type_it->get<std::string>();
  for (const auto& entry : registry()) {
    if (type != entry.type) continue;
    try {
      return entry.build(config);
    } catch (const Error& e) {
      fail("make_model", "{}: type {}: {}", model_config.source(), type, e.what());
    }
  }
  fail("make_model", "{}: unknown model type '{}' (known: {})", model_config.source(), type,
       fmt::join(type_names(), ", "));
}

AutoencoderPtr make_model(const Config& model_config) {
  auto model = make_trainable(model_config);
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model);
  if (!autoencoder)
    fail("make_model",
         "{}: type {} is not an image autoencoder (expected one of ae, vae, vqvae, "
         "vqgan, autoencoder_kl)",
         model_config.source(), model->kind());
  return autoencoder;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) {
    names.emplace_back(entry.type);
    for (const auto& preset : entry.presets())
      names.push_back(std::string(entry.type) + ":" + preset);
  }
  return names;
}

}  // namespace lf
