// libFuzzer target: image decoding through stb (load_image), as stored, as gray and as RGB; the
// input length picks the conversion so that every input costs one decode.
#include <cstdlib>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int64_t channels[] = {0, 1, 3};
  const int64_t wanted = channels[size % 3];
  const std::string path = lf::fuzz::write_input(data, size, ".png");
  try {
    const torch::Tensor image = lf::load_image(path, wanted);
    if (image.dim() != 3 || (wanted != 0 && image.size(0) != wanted)) abort();
    if (image.size(1) > lf::kImageMaxSide || image.size(2) > lf::kImageMaxSide) abort();
  } catch (const lf::Error&) {
  }
  return 0;
}
