// Reads a weight file of any supported format by its contents: .safetensors, or a PyTorch /
// Lightning checkpoint (torch.save zip archive: .ckpt, .pt, .pth, .bin).
#pragma once

#include <string>

#include "io/state_dict.h"

namespace lf {

// All tensors of a .safetensors file, or the state_dict tensors of a torch.save checkpoint.
// Throws lf::Error naming the file and listing the supported formats when it is neither.
TensorMap read_weights_file(const std::string& path);

}  // namespace lf
