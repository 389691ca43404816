// How a VQGAN / KL autoencoder bounds its memory at inference, as users state it (a byte bound,
// always streaming, or blended tiles), turned into the model's MemoryPlan / TileOptions. Shared
// by the CLI's --max-memory / --stream / --tile and the library's Model::set_memory_limit.
#pragma once

#include <torch/torch.h>

#include "models/autoencoder.h"

namespace lf {

struct MemoryOptions {
  int64_t tile = 0;           // > 0: independent blended tiles of this many pixels (approximate)
  int64_t tile_overlap = -1;  // -1: a quarter of the tile
  int64_t max_bytes = 0;      // bound on the process's resident memory; 0 = 80% of what is free
  bool stream = false;        // always stream in row bands (exact)
  bool explicit_request() const { return tile > 0 || stream || max_bytes > 0; }
};

// Applies the options to `model` (running on `device`). Models other than VQGAN / KL accept only
// the defaults; the memory bound covers the whole process, so what is resident now (weights,
// runtime) is taken off it. Throws lf::Error naming the option on a conflict or an impossible
// bound.
void apply_memory_options(AutoencoderImpl& model, const MemoryOptions& options,
                          torch::Device device);

// A "Field:   123 kB" line of a /proc file (/proc/self/status, /proc/meminfo), in bytes; -1 when
// absent.
int64_t proc_kb_field(const char* path, const std::string& field);

}  // namespace lf
