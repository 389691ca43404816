// A model from a config file and a weights file, as the original projects publish them: a taming
// VQGAN or CompVis/SD YAML (or one of our configs) plus weights in taming/CompVis keys, inside a
// full SD checkpoint (first_stage_model.*), or in the diffusers layout; .safetensors or a
// Lightning/PyTorch .ckpt read without executing anything.
#pragma once

#include <string>
#include <vector>

#include "io/config.h"
#include "io/state_dict.h"
#include "models/autoencoder.h"

namespace lf {

struct ImportedModel {
  AutoencoderPtr model;              // inference-only (no training loss), eval mode, on the CPU
  Config config;                     // {"model": our model config}: what config.json beside it says
  std::string layout;                // "native" | "first_stage_model" | "diffusers"
  std::vector<std::string> ignored;  // file keys that are not part of the autoencoder
  LoadReport report;
};

// Our model config from a config file: an original taming/ldm/SD YAML, one of our run configs
// (its "model" section) or a bare model config ({type: ...}). The training loss is dropped.
Json model_config_from_file(const std::string& config_path);

// Builds the model the config describes and loads the weights. Missing autoencoder weights or a
// shape mismatch throw, naming the keys; training-only keys (loss.*) and keys of other models in
// the file are ignored and listed.
ImportedModel import_model(const std::string& config_path, const std::string& weights_path);

// Writes an imported model as a model folder: config.json + model.safetensors (atomically), which
// every subcommand's --model accepts.
void save_model_folder(const ImportedModel& imported, const std::string& dir);

}  // namespace lf
