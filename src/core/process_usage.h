// What the kernel has charged this process so far: minor page faults, system and user CPU time and
// the peak resident set (getrusage). Benchmarks report it, so that a regression in allocation
// (faults cost ~12 us per 4 KiB page in these VMs) shows in their output.
#pragma once

#include <sys/resource.h>

namespace lf {

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

// Usage between two snapshots, divided by `calls`; the peak is the later snapshot's.
inline ProcessUsage per_call(const ProcessUsage& before, const ProcessUsage& after, int calls) {
  return {(after.minor_faults - before.minor_faults) / calls,
          (after.system_s - before.system_s) / calls, (after.user_s - before.user_s) / calls,
          after.peak_rss_mb};
}

}  // namespace lf
