// Built without oneDNN (LF_ONEDNN_WINOGRAD=OFF): no Winograd path, LibTorch's convolution only.
#include "core/error.h"
#include "models/winograd_conv.h"

namespace lf::winograd {

bool available() {
  return false;
}

std::string describe() {
  return "not built (LF_ONEDNN_WINOGRAD=OFF)";
}

torch::Tensor conv3x3(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("winograd::conv3x3", "this build has no oneDNN Winograd path (LF_ONEDNN_WINOGRAD=OFF)");
}

bool trainable(int64_t, int64_t, int64_t, int64_t, int64_t) {
  return false;
}

torch::Tensor conv3x3_trainable(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("winograd::conv3x3_trainable",
       "this build has no oneDNN Winograd path (LF_ONEDNN_WINOGRAD=OFF)");
}

void release_transformed(const torch::Tensor&) {}

}  // namespace lf::winograd
