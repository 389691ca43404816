// Exact streaming encode and decode of the ldm/taming encoder and decoder in bounded memory: every
// step runs layer by layer over full-width row bands with 1-2 row halos; attention computes keys
// and values of the whole map, then attends band by band of queries. GroupNorm statistics are
// accumulated in float64 over the non-overlapping band cores of the whole map before any band is
// normalised, so the result equals the untiled forward up to float summation order (no blending,
// no seams). Memory: the largest full-size map one step reads or writes (its bands are released
// as they are consumed, each in its own mapping so that the pages go back to the OS) plus one
// band's temporaries; upsampled maps are never stored, only recomputed. Optionally the
// full-resolution level is not stored at all (recompute_full_resolution).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/ldm_coder.h"

namespace lf {

struct StreamingOptions {
  // Bytes of temporaries one band may take; sets the band height of every step (at least 4 rows).
  TORCH_ARG(int64_t, band_bytes) = int64_t{64} << 20;
  // Store the full-size intermediate maps in float16 (half the memory; compute stays float32;
  // about 80 dB instead of fp32 round-off). Overflowing values throw rather than turn into inf.
  TORCH_ARG(bool, half_storage) = false;
  // Never store the full-resolution level's maps (the largest ones): every GroupNorm there gets
  // its statistics from a sweep that recomputes its input, through line buffers, from the last
  // stored map. Memory: the maps of the lower levels; compute: one sweep per norm of that level.
  TORCH_ARG(bool, recompute_full_resolution) = false;
};

// z: [N, z_channels, h, w] -> decoder(z) [N, out_ch, h*f, w*f], equal to decoder.forward(z) up to
// float rounding. Inference only (no gradients).
torch::Tensor streamed_decode(LdmDecoderImpl& decoder, const torch::Tensor& z,
                              const StreamingOptions& options = {});
// x: [N, in_channels, H, W], H and W multiples of f -> encoder(x) [N, z_out, H/f, W/f], equal to
// encoder.forward(x) up to float rounding.
torch::Tensor streamed_encode(LdmEncoderImpl& encoder, const torch::Tensor& x,
                              const StreamingOptions& options = {});

// Estimated peak bytes of activations (weights excluded) of one call on an input of this shape
// (decode: the latent [N, z, h, w]; encode: the image [N, C, H, W]).
struct CoderMemory {
  int64_t untiled = 0;                 // the module's own forward
  int64_t streamed = 0;                // streamed with fp32 storage
  int64_t streamed_half = 0;           // streamed with fp16 storage
  int64_t streamed_recompute = 0;      // fp16 storage, full-resolution level recomputed
  int64_t streamed_recompute_f32 = 0;  // fp32 storage, full-resolution level recomputed
};
CoderMemory estimate_decode_memory(LdmDecoderImpl& decoder, torch::IntArrayRef latent_shape,
                                   const StreamingOptions& options = {});
CoderMemory estimate_encode_memory(LdmEncoderImpl& encoder, torch::IntArrayRef image_shape,
                                   const StreamingOptions& options = {});

}  // namespace lf
