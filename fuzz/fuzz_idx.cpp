// libFuzzer target: the IDX readers (MNIST images and labels), on the input as it is (plain, or
// gzip when it starts so) and on the input gzip-compressed, so both read paths see IDX structure.
#include <cstdlib>

#include "core/error.h"
#include "data/idx_dataset.h"
#include "fuzz_input.h"

namespace {
void read_both(const std::string& path) {
  try {
    const torch::Tensor images = lf::read_idx_images(path);
    if (images.dim() != 3 || images.scalar_type() != torch::kUInt8) abort();
  } catch (const lf::Error&) {
  }
  try {
    const torch::Tensor labels = lf::read_idx_labels(path);
    if (labels.dim() != 1 || labels.scalar_type() != torch::kInt64) abort();
  } catch (const lf::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  read_both(lf::fuzz::write_input(data, size, "-idx-ubyte"));
  const std::string packed = lf::fuzz::gzip(data, size);
  read_both(lf::fuzz::write_input(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(),
                                  "-idx-ubyte.gz"));
  return 0;
}
