// Names of foreign autoencoder weights -> our names (the original taming/ldm checkpoint keys:
// encoder.down.0.block.1.norm1.weight, ...). The one place that knows the Stable Diffusion
// checkpoint prefix and diffusers' AutoencoderKL / VQModel names.
#pragma once

#include <string>
#include <vector>

#include "io/state_dict.h"

namespace lf {

struct NativeWeights {
  TensorMap tensors;   // under our names
  std::string layout;  // "native" | "first_stage_model" (a full SD/LDM checkpoint) | "diffusers"
  std::vector<std::string> ignored;  // keys of the file that are not autoencoder weights, sorted
};

// Detects the layout from the keys and maps it:
// - native: keys under encoder., decoder., quant_conv., post_quant_conv., quantize., loss. are
//   kept as they are; any others (model_ema.*, ...) are ignored.
// - first_stage_model: a full Stable Diffusion / latent-diffusion checkpoint; the prefix is
//   stripped (the rest may be native or diffusers names) and every other key (the UNet, the text
//   encoder, ...) is ignored.
// - diffusers: encoder.down_blocks.*, mid_block, conv_norm_out, decoder.up_blocks.* (in reverse
//   order), resnets/attentions/downsamplers/upsamplers; linear attention weights [C, C] become
//   1x1 convolution weights [C, C, 1, 1].
// Throws lf::Error naming `source` for a file that mixes layouts, has no autoencoder weights, or
// holds a diffusers key this mapping does not know.
NativeWeights to_native_layout(const TensorMap& file, const std::string& source);

}  // namespace lf
