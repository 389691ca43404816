// The table of image model types: type name -> presets and factory. One line per model.
#include "models/model_registry.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/ae.h"
#include "models/autoencoder_kl.h"
#include "models/classifier.h"
#include "models/vae.h"
#include "models/vqgan.h"
#include "models/vqvae.h"

namespace lf {
namespace {

std::vector<std::string> type_names(const std::vector<ModelType>& types) {
  std::vector<std::string> names;
  for (const auto& entry : types) names.emplace_back(entry.type);
  return names;
}

}  // namespace

void fail_preset(const Json& preset) {
  fail("make_model", "preset: expected a string, got {}", preset.dump());
}

const std::vector<ModelType>& image_model_types() {
  static const std::vector<ModelType> entries = {
      {"ae", ae_preset_names, build_from_preset<AEImpl, AEOptions, ae_preset>},
      {"vae", vae_preset_names, build_from_preset<VAEImpl, VAEOptions, vae_preset>},
      {"vqvae", vqvae_preset_names, build_from_preset<VQVAEImpl, VQVAEOptions, vqvae_preset>},
      {"vqgan", vqgan_preset_names, build_from_preset<VQGANImpl, VQGANOptions, vqgan_preset>},
      {"autoencoder_kl", autoencoder_kl_preset_names,
       build_from_preset<AutoencoderKLImpl, AutoencoderKLOptions, autoencoder_kl_preset>},
      {"classifier", classifier_preset_names,
       build_from_preset<ClassifierImpl, ClassifierOptions, classifier_preset>},
  };
  return entries;
}

TrainablePtr build_model(const std::vector<ModelType>& types, const Config& model_config) {
  const Json& config = model_config.json();
  const auto type_it = config.is_object() ? config.find("type") : config.end();
  if (type_it == config.end() || !type_it->is_string())
    fail("make_model", "{}: expected a string 'type' (one of {}), got {}", model_config.source(),
         fmt::join(type_names(types), ", "), config.dump());
  const auto type = type_it->get<std::string>();
  for (const auto& entry : types) {
    if (type != entry.type) continue;
    try {
      return entry.build(config);
    } catch (const Error& e) {
      fail("make_model", "{}: type {}: {}", model_config.source(), type, e.what());
    }
  }
  fail("make_model", "{}: unknown model type '{}' (known: {})", model_config.source(), type,
       fmt::join(type_names(types), ", "));
}

AutoencoderPtr make_model(const Config& model_config) {
  auto model = build_model(image_model_types(), model_config);
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model);
  if (!autoencoder)
    fail("make_model",
         "{}: type {} is not an image autoencoder (expected one of ae, vae, vqvae, "
         "vqgan, autoencoder_kl)",
         model_config.source(), model->kind());
  return autoencoder;
}

std::vector<std::string> model_type_names(const std::vector<ModelType>& types) {
  std::vector<std::string> names;
  for (const auto& entry : types) {
    names.emplace_back(entry.type);
    for (const auto& preset : entry.presets())
      names.push_back(std::string(entry.type) + ":" + preset);
  }
  return names;
}

}  // namespace lf
