// Importing original checkpoints: see model_import.h.
#include "models/model_import.h"

#include <fmt/ranges.h>

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/original_config.h"
#include "io/weight_layout.h"
#include "io/weights_file.h"
#include "models/model_registry.h"

namespace fs = std::filesystem;

namespace lf {

Json model_config_from_file(const std::string& config_path) {
  const Config file = Config::from_yaml_file(config_path);
  const Json& root = file.json();
  Json model;
  if (is_original_config(root)) {
    model = model_config_from_original(root, config_path);
    model.erase("loss_original");
  } else if (root.is_object() && root.contains("model") && root.at("model").is_object() &&
             root.at("model").contains("type")) {
    model = root.at("model");
  } else if (root.is_object() && root.contains("type")) {
    model = root;
  } else {
    fail("import",
         "{}: expected a taming-transformers or CompVis/Stable Diffusion model config "
         "(model.target + model.params), a latentforge config with a model section, or "
         "a model config with a 'type'",
         config_path);
  }
  model["loss"] = nullptr;  // inference only: no discriminator or LPIPS weights needed
  return model;
}

ImportedModel import_model(const std::string& config_path, const std::string& weights_path) {
  ImportedModel imported;
  const Json model_config = model_config_from_file(config_path);
  imported.config = Config(Json{{"model", model_config}}, config_path);
  imported.model = make_model(Config(model_config, config_path));
  NativeWeights native = to_native_layout(read_weights_file(weights_path), weights_path);
  imported.layout = native.layout;
  imported.ignored = native.ignored;
  TensorMap weights;
  for (auto& [key, tensor] : native.tensors) {
    if (key.rfind("loss.", 0) == 0) {  // discriminator, LPIPS, logvar: training only
      imported.ignored.push_back(key);
      continue;
    }
    weights[key] = tensor.is_floating_point() ? tensor.to(torch::kFloat32) : tensor;
  }
  imported.report = load_module_state(*imported.model, weights, /*strict=*/false, weights_path);
  if (!imported.report.missing.empty())
    fail("import", "{}: {} weights of the {} are missing (is this the checkpoint of {}?): {}",
         weights_path, imported.report.missing.size(), imported.model->kind(), config_path,
         fmt::join(imported.report.missing, ", "));
  if (!imported.report.unexpected.empty())
    spdlog::warn("{}: {} unexpected keys ignored: {}", weights_path,
                 imported.report.unexpected.size(), fmt::join(imported.report.unexpected, ", "));
  if (!imported.ignored.empty())
    spdlog::debug("{}: layout {}, {} keys outside the autoencoder ignored", weights_path,
                  imported.layout, imported.ignored.size());
  imported.model->eval();
  return imported;
}

void save_model_folder(const ImportedModel& imported, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("import", "{}: cannot create the folder: {}", dir, ec.message());
  save_module_safetensors(*imported.model, dir + "/model.safetensors",
                          {{"format", "latentforge"}, {"model", imported.model->kind()}});
  imported.config.save_json(dir + "/config.json");
}

}  // namespace lf
