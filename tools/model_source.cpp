// Opening a subcommand's model: see model_source.h.
#include "model_source.h"

#include "core/error.h"
#include "models/ldm_autoencoder.h"
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

void add_tile_options(CLI::App* cmd, ModelSource& s) {
  cmd->add_option("--tile", s.tile,
                  "VQGAN / KL autoencoder: process images in tiles of this many pixels (a "
                  "multiple of the downsampling factor); bounds memory for large images")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tile-overlap", s.tile_overlap,
                  "overlap of neighbouring tiles in pixels, blended (default: a quarter of the "
                  "tile)");
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
  if (s.tile > 0) {
    auto* ldm = dynamic_cast<LdmAutoencoderImpl*>(loaded.model.get());
    if (!ldm)
      fail("tile", "--tile needs a VQGAN or KL autoencoder; this model is a {}",
           loaded.model->kind());
    const int64_t f = ldm->factor();
    const int64_t overlap = s.tile_overlap >= 0 ? s.tile_overlap : s.tile / 4 / f * f;
    ldm->set_tiling({s.tile, overlap});
  }
  return loaded;
}

int64_t model_in_channels(const Config& run_config) {
  if (run_config.has("model.ddconfig.in_channels"))
    return run_config.get<int64_t>("model.ddconfig.in_channels");
  return run_config.get<int64_t>("model.in_channels", 0);
}

}  // namespace lf::cli
