// Where a subcommand's model comes from: --model (a run folder, checkpoint folder or model
// .safetensors with config.json beside it) or --config + --weights (an original taming / CompVis /
// SD config with weights in any supported layout), and the memory options of the ldm models
// (--tile,
// --max-memory, --stream).
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
  std::string max_memory;     // --max-memory, e.g. "1G"; empty = what the machine has free
  bool stream = false;        // --stream
};

// required = false: the subcommand may find its model elsewhere (sample --prior: the prior's
// stage1).
void add_model_source(CLI::App* cmd, ModelSource& source, bool required = true);
void add_tile_options(CLI::App* cmd, ModelSource& source);
// Loads the model (eval mode, on `device`) and applies the tiling / memory options.
LoadedModel open_model_source(const ModelSource& source, torch::Device device);
// Logs (stderr) how the last encode / decode calls bounded their memory when they streamed.
void report_memory_plan(LoadedModel& loaded);
// "1G", "1.5GB", "800M", "512MiB", "4096" (bytes) -> bytes; throws on anything else.
int64_t parse_bytes(const std::string& text, const char* where);
// The image channels the model reads (for converting png/jpg inputs).
int64_t model_in_channels(const Config& run_config);

}  // namespace lf::cli
