// libFuzzer target: the safetensors reader (header validation, then every tensor copied out).
#include <cstdlib>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lf::fuzz::write_input(data, size, ".safetensors");
  try {
    const lf::SafetensorsReader reader(path);
    for (const auto& key : reader.keys()) {
      const lf::TensorInfo& info = reader.info(key);
      const torch::Tensor t = reader.get(key);
      // A tensor that opened must hold exactly the bytes its offsets name.
      if (static_cast<uint64_t>(t.numel()) * t.element_size() != info.end - info.begin) abort();
    }
  } catch (const lf::Error&) {
  }
  return 0;
}
