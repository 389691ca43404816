// Model loading from run folders, checkpoint folders and weight files.
#include "models/saved_model.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/state_dict.h"
#include "models/model_registry.h"

namespace fs = std::filesystem;

namespace lf {

std::string checkpoint_name(int64_t step) {
  return fmt::format("step_{:07d}", step);
}

std::string latest_checkpoint(const std::string& run_dir) {
  const std::string pointer = run_dir + "/checkpoints/latest";
  std::error_code ec;
  if (!fs::is_regular_file(pointer, ec)) return "";
  std::string name = read_file(pointer, "checkpoint");
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const std::string dir = run_dir + "/checkpoints/" + name;
  if (name.empty() || name.find('/') != std::string::npos || !fs::is_directory(dir, ec))
    fail("checkpoint", "{}: names '{}', which is not a checkpoint folder", pointer, name);
  return dir;
}

Json model_config_json(const TrainableImpl& model) {
  Json json = model.options_json();
  json["type"] = model.kind();
  json.erase("preset");
  return json;
}

LoadedTrainable load_saved_model(const std::string& path, torch::Device device, bool use_ema,
                                 const std::function<TrainablePtr(const Config&)>& build) {
  std::error_code ec;
  std::string dir, weights;
  if (fs::is_directory(path, ec)) {
    if (fs::is_regular_file(path + "/model.safetensors", ec)) {
      dir = path;
    } else {
      dir = latest_checkpoint(path);
      if (dir.empty())
        fail("load_model",
             "{}: no model.safetensors and no checkpoint (expected a run or checkpoint folder)",
             path);
    }
    weights = dir + "/model.safetensors";
    if (use_ema && fs::is_regular_file(dir + "/ema.safetensors", ec))
      weights = dir + "/ema.safetensors";
  } else if (fs::is_regular_file(path, ec)) {
    dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    weights = path;
  } else {
    fail("load_model",
         "{}: no such file or folder (expected a run folder, a checkpoint folder or a .safetensors "
         "file)",
         path);
  }
  const std::string config_path = dir + "/config.json";
  if (!fs::is_regular_file(config_path, ec))
    fail("load_model", "{}: no config.json beside the weights (it says which model they belong to)",
         dir);
  LoadedTrainable loaded{nullptr, Config::from_yaml_file(config_path), weights};
  loaded.model = build(loaded.config.sub("model"));
  load_module_safetensors(*loaded.model, weights, /*strict=*/true);
  loaded.model->to(device);
  loaded.model->eval();
  return loaded;
}

LoadedModel load_model(const std::string& path, torch::Device device, bool use_ema) {
  // Only this layer's table is asked; a type it does not know (a prior: priors/prior_registry.h)
  // or a model that is no autoencoder (the classifier) is refused by name before any weights load.
  const auto build = [&path](const Config& model_config) -> TrainablePtr {
    const Json& json = model_config.json();
    const auto type = json.is_object() ? json.find("type") : json.end();
    const std::string name =
        type != json.end() && type->is_string() ? type->get<std::string>() : "untyped";
    TrainablePtr model;
    for (const auto& entry : image_model_types())
      if (name == entry.type) model = build_model(image_model_types(), model_config);
    if (!std::dynamic_pointer_cast<AutoencoderImpl>(model))
      fail("load_model", "{}: holds a {} model; expected an image autoencoder (a stage-1 model)",
           path, name);
    return model;
  };
  auto loaded = load_saved_model(path, device, use_ema, build);
  return {std::dynamic_pointer_cast<AutoencoderImpl>(loaded.model), loaded.config,
          loaded.weights_path};
}

}  // namespace lf
