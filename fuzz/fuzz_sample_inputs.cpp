// libFuzzer target: the files `sample`, `decode` and the other subcommands read as inputs:
// .safetensors image batches (--cond sketches, "images") and code files ("indices", "labels").
#include <cstdlib>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lf::fuzz::write_input(data, size, ".safetensors");
  try {
    const torch::Tensor images = lf::read_images(path);
    if (images.dim() != 4 || images.scalar_type() != torch::kFloat32) abort();
  } catch (const lf::Error&) {
  }
  try {
    (void)lf::read_tensor(path, "indices");
  } catch (const lf::Error&) {
  }
  return 0;
}
