// Run folders and checkpoints. A run folder holds config.json (the whole resolved config),
// command.txt, log.jsonl, model.safetensors (final weights) and checkpoints/step_NNNNNNN/ with
// model.safetensors, ema.safetensors, optimizer.pt, state.pt (step, data position, RNG) and
// config.json. Checkpoint folders appear atomically (written as *.tmp, then renamed) and
// checkpoints/latest names the newest complete one.
#pragma once

#include <string>

#include "data/data_loader.h"
#include "io/config.h"
#include "models/autoencoder.h"

namespace lf {

struct TrainingState {
  int64_t step = 0;       // optimizer steps done
  LoaderPosition data;    // position of the next batch
  torch::Tensor rng_cpu;  // torch's default CPU generator state
};

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

// Loads a trained model from a run folder (its model.safetensors, else its latest checkpoint), a
// checkpoint folder, or a .safetensors file with config.json beside it. use_ema picks
// ema.safetensors when present. The model is moved to `device` and set to eval mode.
LoadedTrainable load_trainable(const std::string& path, torch::Device device, bool use_ema = true);
// The same for an image autoencoder: any other kind of model is refused with a clear error.
LoadedModel load_model(const std::string& path, torch::Device device, bool use_ema = true);

// The model section of a run config: the model's resolved options plus its type.
Json model_config_json(const TrainableImpl& model);

}  // namespace lf
