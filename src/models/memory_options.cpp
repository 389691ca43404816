// Memory options of VQGAN / KL inference: see memory_options.h.
#include "models/memory_options.h"

#include <fstream>

#include "core/allocator.h"
#include "core/error.h"
#include "models/ldm_autoencoder.h"

namespace lf {

int64_t proc_kb_field(const char* path, const std::string& field) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size())) * 1024;
  return -1;
}

void apply_memory_options(AutoencoderImpl& model, const MemoryOptions& o, torch::Device device) {
  auto* ldm = dynamic_cast<LdmAutoencoderImpl*>(&model);
  if (o.explicit_request() && !ldm)
    fail("model",
         "--tile, --stream and --max-memory need a VQGAN or KL autoencoder; this model is a {}",
         model.kind());
  if (!ldm) return;
  if (o.tile > 0 && (o.stream || o.max_bytes > 0))
    fail("model",
         "--tile (blended tiles) and --stream / --max-memory (exact streaming) are "
         "alternatives; choose one");
  if (o.tile < 0) fail("model", "--tile: expected >= 0 pixels, got {}", o.tile);
  if (o.tile > 0) {
    const int64_t f = ldm->factor();
    const int64_t overlap = o.tile_overlap >= 0 ? o.tile_overlap : o.tile / 4 / f * f;
    ldm->set_tiling({o.tile, overlap});
    return;
  }
  ldm->set_tiling({});
  if (!device.is_cpu()) {
    if (o.stream || o.max_bytes > 0)
      fail("model", "--stream and --max-memory bound host memory: they need --device cpu");
    ldm->set_memory_plan(MemoryPlan());
    return;
  }
  MemoryPlan plan;
  plan.stream(o.stream);
  release_free_memory();  // what loading the model freed is not ours to count
  const int64_t resident = std::max<int64_t>(0, proc_kb_field("/proc/self/status", "VmRSS:"));
  if (o.max_bytes > 0) {
    if (o.max_bytes <= resident)
      fail("--max-memory", "{:.0f} MiB is less than the {:.0f} MiB the process already takes",
           static_cast<double>(o.max_bytes) / (1 << 20), static_cast<double>(resident) / (1 << 20));
    plan.max_bytes(o.max_bytes - resident);
  } else if (const int64_t avail = proc_kb_field("/proc/meminfo", "MemAvailable:"); avail > 0) {
    plan.max_bytes(avail / 10 * 8);
  }
  ldm->set_memory_plan(plan);
}

}  // namespace lf
