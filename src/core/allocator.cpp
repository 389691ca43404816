// Allocator identification through jemalloc's mallctl, looked up at run time so the library does
// not depend on jemalloc's header.
#include "core/allocator.h"

#include <dlfcn.h>
#include <sys/types.h>

namespace lf {

std::string allocator_summary() {
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (!mallctl) return "glibc malloc";
  const char* version = nullptr;
  size_t size = sizeof version;
  std::string text = "jemalloc";
  if (mallctl("version", &version, &size, nullptr, 0) == 0 && version) {
    const std::string v = version;
    text += " " + v.substr(0, v.find('-'));
  }
  ssize_t decay = 0;
  size = sizeof decay;
  if (mallctl("opt.dirty_decay_ms", &decay, &size, nullptr, 0) == 0)
    text += decay < 0 ? " (freed pages kept)"
                      : " (freed pages returned after " + std::to_string(decay) + " ms)";
  return text;
}

}  // namespace lf
