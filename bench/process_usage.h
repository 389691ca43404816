// The closing line of every benchmark: what the kernel charged the process (core/process_usage.h)
// and the allocator in use.
#pragma once

#include <cstdio>
#include <string>

#include "core/allocator.h"
#include "core/process_usage.h"

namespace lf::bench {

using lf::per_call;
using lf::process_usage;
using lf::ProcessUsage;

// The closing line of every benchmark.
inline void print_process_usage(std::FILE* out = stdout) {
  const auto u = process_usage();
  std::fprintf(out,
               "process: %ld minor page faults, %.2f s system time, %.2f s user time, peak RSS "
               "%.0f MB (%s)\n",
               u.minor_faults, u.system_s, u.user_s, u.peak_rss_mb,
               lf::allocator_summary().c_str());
}

}  // namespace lf::bench

// BENCHMARK_MAIN() plus the process usage line: the main() of every Google Benchmark program here.
#define LF_BENCHMARK_MAIN_WITH_PROCESS_USAGE()                        \
  int main(int argc, char** argv) {                                   \
    benchmark::Initialize(&argc, argv);                               \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                              \
    benchmark::Shutdown();                                            \
    lf::bench::print_process_usage();                                 \
    return 0;                                                         \
  }
