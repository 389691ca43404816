// Run folders and checkpoints. A run folder holds config.json (the whole resolved config),
// command.txt, log.jsonl, model.safetensors (final weights) and checkpoints/step_NNNNNNN/ with
// model.safetensors, ema.safetensors, optimizer.pt, state.pt (step, data position, RNG) and
// config.json. Checkpoint folders appear atomically (written as *.tmp, then renamed) and
// checkpoints/latest names the newest complete one.
#pragma once

#include <string>

#include "data/data_loader.h"
#include "io/config.h"
#include "models/saved_model.h"

namespace lf {

struct TrainingState {
  int64_t step = 0;       // optimizer steps done
  LoaderPosition data;    // position of the next batch
  torch::Tensor rng_cpu;  // torch's default CPU generator state
};

// A saved model of any trainable type (models/saved_model.h; train/trainable_types.h).
LoadedTrainable load_trainable(const std::string& path, torch::Device device, bool use_ema = true);

}  // namespace lf
