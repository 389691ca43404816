// libFuzzer target: whole torch.save checkpoints (.ckpt/.pt): zip, pickle and the tensors built
// from its storages (CRC-32 skipped in this build so that mutations reach the pickle).
#include <cstdlib>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lf::fuzz::write_input(data, size, ".ckpt");
  try {
    for (const auto& [name, tensor] : lf::read_torch_checkpoint(path)) {
      if (!tensor.is_contiguous()) abort();
      (void)tensor.sum();  // touches every element: must stay inside the mapping
    }
  } catch (const lf::Error&) {
  }
  return 0;
}
