// What the kernel charged the benchmark process: minor page faults, system and user CPU time and
// the peak resident set (getrusage), so a regression in allocation (faults cost ~12 us per 4 KiB
// page in these VMs) shows in every benchmark's output.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "core/allocator.h"

namespace lf::bench {

struct ProcessUsage {
  long minor_faults = 0;
  double system_s = 0, user_s = 0;
  double peak_rss_mb = 0;
};

inline ProcessUsage process_usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return {r.ru_minflt, seconds(r.ru_stime), seconds(r.ru_utime), r.ru_maxrss / 1024.0};
}

// Usage between two snapshots, divided by `calls`.
inline ProcessUsage per_call(const ProcessUsage& before, const ProcessUsage& after, int calls) {
  return {(after.minor_faults - before.minor_faults) / calls,
          (after.system_s - before.system_s) / calls, (after.user_s - before.user_s) / calls,
          after.peak_rss_mb};
}

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
