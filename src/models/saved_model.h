// Reading a trained model back: from a run folder (its model.safetensors, else its latest
// checkpoint), a checkpoint folder, or a .safetensors file with config.json beside it. The layout
// is the one train/checkpoint.h writes; reading it lives here, below the training code, so that
// the layers between (a prior's first stage, the reports) can load models without it.
#pragma once

#include <functional>
#include <string>

#include "io/config.h"
#include "models/autoencoder.h"

namespace lf {

std::string checkpoint_name(int64_t step);  // "step_0000500"
// Newest complete checkpoint folder in a run folder; "" when none.
std::string latest_checkpoint(const std::string& run_dir);

template <typename Ptr>
struct Loaded {
  Ptr model;
  Config config;             // the whole run config (model, data, train)
  std::string weights_path;  // the .safetensors actually loaded
};
using LoadedModel = Loaded<AutoencoderPtr>;
using LoadedTrainable = Loaded<TrainablePtr>;

// Loads a saved model of any type `build` knows (it gets the run config's model section). use_ema
// picks ema.safetensors when present. The model is moved to `device` and set to eval mode.
LoadedTrainable load_saved_model(const std::string& path, torch::Device device, bool use_ema,
                                 const std::function<TrainablePtr(const Config&)>& build);
// An image autoencoder: any other kind of model is refused with a clear error.
LoadedModel load_model(const std::string& path, torch::Device device, bool use_ema = true);

// The model section of a run config: the model's resolved options plus its type.
Json model_config_json(const TrainableImpl& model);

}  // namespace lf
