// Tensors in their own anonymous mappings: see mapped_tensor.h.
#include "core/mapped_tensor.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace lf {

torch::Tensor empty_mapped(torch::IntArrayRef shape, torch::ScalarType dtype) {
  const int64_t bytes = c10::multiply_integers(shape) * static_cast<int64_t>(elementSize(dtype));
  if (bytes == 0) return torch::empty(shape, dtype);
  void* addr = ::mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED)
    fail("empty_mapped", "cannot map {} bytes for a {} tensor: {}", bytes, shape_str(shape),
         std::strerror(errno));
  return torch::from_blob(
      addr, shape, [bytes](void* p) { ::munmap(p, static_cast<size_t>(bytes)); },
      torch::TensorOptions().dtype(dtype));
}

}  // namespace lf
