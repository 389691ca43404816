// Allocator identification through jemalloc's mallctl, looked up at run time so the library does
// not depend on jemalloc's header.
#include "core/allocator.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sys/types.h>

namespace lf {
namespace {

using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);

Mallctl find_mallctl() {
  static const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  return mallctl;
}

}  // namespace

std::string allocator_summary() {
  const auto mallctl = find_mallctl();
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

void release_free_memory() {
  if (const auto mallctl = find_mallctl()) {
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL
    return;
  }
  malloc_trim(0);
}

}  // namespace lf
