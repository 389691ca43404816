// Opening a subcommand's model: see model_source.h.
#include "model_source.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>

#include "core/error.h"
#include "models/ldm_autoencoder.h"
#include "models/memory_options.h"
#include "models/model_import.h"

namespace lf::cli {

void add_model_source(CLI::App* cmd, ModelSource& s, bool required) {
  auto* group = cmd->add_option_group("model", "the model: --model, or --config with --weights");
  auto* model = group->add_option(
      "-m,--model", s.model,
      "run folder, checkpoint folder, or model .safetensors with config.json beside it");
  auto* config = group->add_option(
      "--config", s.config,
      "model config: an original taming-transformers / CompVis / Stable Diffusion YAML, or a "
      "latentforge config (with --weights)");
  auto* weights = group->add_option(
      "--weights", s.weights,
      "weights for --config: .safetensors or .ckpt in taming/CompVis keys, a full SD checkpoint "
      "(first_stage_model.*) or the diffusers layout");
  config->needs(weights);
  weights->needs(config);
  model->excludes(config);
  group->require_option(required ? 1 : 0, 2);
  cmd->add_flag("--no-ema", s.no_ema, "use the raw weights even when EMA weights exist");
}

int64_t parse_bytes(const std::string& text, const char* where) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "K" || unit == "KB" || unit == "KIB") scale = 1024.0;
  if (unit == "M" || unit == "MB" || unit == "MIB") scale = 1024.0 * 1024;
  if (unit == "G" || unit == "GB" || unit == "GIB") scale = 1024.0 * 1024 * 1024;
  if (value <= 0 || scale == 0 || !std::isfinite(value))
    fail(where, "expected a size such as 1G, 1.5G, 800M or a byte count, got '{}'", text);
  return static_cast<int64_t>(value * scale);
}

void add_tile_options(CLI::App* cmd, ModelSource& s) {
  cmd->add_option("--max-memory", s.max_memory,
                  "VQGAN / KL autoencoder: bound on the process's resident memory (weights "
                  "included), e.g. 1G; images whose untiled pass would exceed it are encoded / "
                  "decoded exactly in row bands. Default: the machine's free memory");
  cmd->add_flag("--stream", s.stream,
                "VQGAN / KL autoencoder: always encode / decode in row bands (exact, less memory)");
  cmd->add_option("--tile", s.tile,
                  "VQGAN / KL autoencoder: independent blended tiles of this many pixels (a "
                  "multiple of the downsampling factor): approximate, but memory independent of "
                  "the image size")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tile-overlap", s.tile_overlap,
                  "overlap of neighbouring tiles in pixels, blended (default: a quarter of the "
                  "tile)");
}

void report_memory_plan(LoadedModel& loaded) {
  if (auto* ldm = dynamic_cast<LdmAutoencoderImpl*>(loaded.model.get()))
    for (const auto& note : ldm->take_plan_notes()) spdlog::info("{}", note);
}

LoadedModel open_model_source(const ModelSource& s, torch::Device device) {
  LoadedModel loaded;
  if (!s.model.empty()) {
    loaded = load_model(s.model, device, !s.no_ema);
  } else {
    ImportedModel imported = import_model(s.config, s.weights);
    loaded.model = imported.model;
    loaded.config = imported.config;
    loaded.weights_path = s.weights;
    loaded.model->to(device);
  }
  MemoryOptions memory;
  memory.tile = s.tile;
  memory.tile_overlap = s.tile_overlap;
  memory.stream = s.stream;
  if (!s.max_memory.empty()) memory.max_bytes = parse_bytes(s.max_memory, "--max-memory");
  apply_memory_options(*loaded.model, memory, device);
  return loaded;
}

int64_t model_in_channels(const Config& run_config) {
  if (run_config.has("model.ddconfig.in_channels"))
    return run_config.get<int64_t>("model.ddconfig.in_channels");
  return run_config.get<int64_t>("model.in_channels", 0);
}

}  // namespace lf::cli
