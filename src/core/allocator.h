// Which malloc the process runs on (jemalloc when linked, see src/core/process_defaults.cpp), for
// `latentforge info` and the benchmarks' headers.
#pragma once

#include <string>

namespace lf {

// "jemalloc 5.3.0 (freed pages kept: dirty_decay_ms -1)" or "glibc malloc".
std::string allocator_summary();

}  // namespace lf
