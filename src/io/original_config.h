// Model configs from the original YAML files of taming-transformers (VQGAN) and CompVis
// latent-diffusion / stable-diffusion (the KL autoencoder, or a full LDM/SD config's first stage).
#pragma once

#include <string>

#include "io/config.h"

namespace lf {

// True for a parsed original config (model.target is a string), false for ours (model.type).
bool is_original_config(const Json& json);

// Our model config from an original one:
//   taming/ldm VQModel, ldm VQModelInterface (no remap):
//     {"type": "vqgan", "ddconfig": {...}, "embed_dim": E, "n_embed": K}
//   ldm AutoencoderKL, or an LDM/SD config (Latent*Diffusion) whose first_stage_config is one:
//     {"type": "autoencoder_kl", "ddconfig": {...}, "embed_dim": E, "scale_factor": s}
//     (s: model.params.scale_factor of the full config, 1.0 for a bare AutoencoderKL)
// ddconfig keeps the original names, with the reference defaults filled in. When lossconfig is
// VQLPIPSWithDiscriminator / LPIPSWithDiscriminator, "loss_original" holds its parameters under
// our names (AutoencoderGANLossOptions: kind vq|kl, disc_start, pixel_weight, ...);
// torch.nn.Identity and taming's DummyLoss mean no loss. Throws lf::Error naming `source` and the
// key for unknown targets and keys, and for values the reference would reject.
Json model_config_from_original(const Json& json, const std::string& source);

}  // namespace lf
