// Where a subcommand's model comes from: --model (a run folder, checkpoint folder or model
// .safetensors with config.json beside it) or --config + --weights (an original taming / CompVis /
// SD config with weights in any supported layout), and the --tile options of the ldm models.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "train/checkpoint.h"

namespace lf::cli {

struct ModelSource {
  std::string model;    // --model
  std::string config;   // --config (with --weights)
  std::string weights;  // --weights
  bool no_ema = false;
  int64_t tile = 0;           // --tile, image pixels; 0 = off
  int64_t tile_overlap = -1;  // --tile-overlap; -1 = a quarter of the tile
};

// required = false: the subcommand may find its model elsewhere (sample --prior: the prior's
// stage1).
void add_model_source(CLI::App* cmd, ModelSource& source, bool required = true);
void add_tile_options(CLI::App* cmd, ModelSource& source);
// Loads the model (eval mode, on `device`) and applies the tiling options.
LoadedModel open_model_source(const ModelSource& source, torch::Device device);
// The image channels the model reads (for converting png/jpg inputs).
int64_t model_in_channels(const Config& run_config);

}  // namespace lf::cli
