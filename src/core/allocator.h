// Which malloc the process runs on (jemalloc when linked, see src/core/process_defaults.cpp), for
// `latentforge info` and the benchmarks' headers.
#pragma once

#include <string>

namespace lf {

// "jemalloc 5.3.0 (freed pages kept: dirty_decay_ms -1)" or "glibc malloc".
std::string allocator_summary();

// Hands the allocator's free pages back to the OS (jemalloc: purges every arena; glibc:
// malloc_trim). The process keeps freed pages for speed; a computation that bounds its memory
// calls this where the sizes it allocates change, so pages kept for one size regime do not add to
// the next.
void release_free_memory();

}  // namespace lf
