// CPU tensors in anonymous mappings of their own, whose pages go back to the OS the moment the
// tensor is freed. The process's allocator keeps freed pages for speed (jemalloc with decay -1, see
// src/core/process_defaults.cpp); that is right for temporaries that are reused at once, wrong for
// large maps that a bounded-memory computation releases so that the next one can take their place.
#pragma once

#include <torch/torch.h>

namespace lf {

// Uninitialised, page-aligned; an empty shape gives an ordinary empty tensor.
torch::Tensor empty_mapped(torch::IntArrayRef shape, torch::ScalarType dtype);

}  // namespace lf
