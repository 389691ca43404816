// Resident-memory probes of the benchmarks (Linux /proc): the current and peak resident set, and
// the peak a call adds.
#pragma once

#include <malloc.h>

#include <fstream>
#include <string>

namespace lf::bench {

// A "VmRSS:"-style line of /proc/self/status, in kB; -1 when absent.
inline int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size()));
  return -1;
}

// Resident memory that one call adds at its peak, in MB: freed heap is returned first
// (malloc_trim), then the high-water mark VmHWM is reset to the current RSS (clear_refs 5,
// Linux >= 4.0).
template <typename Fn>
double peak_extra_mb(Fn&& fn) {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  const int64_t start = status_kb("VmRSS:");
  fn();
  return static_cast<double>(status_kb("VmHWM:") - start) / 1024.0;
}

}  // namespace lf::bench
