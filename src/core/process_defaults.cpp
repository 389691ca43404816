// Process start-up defaults, compiled into every executable (CMakeLists.txt: an INTERFACE source of
// lf_program): the allocator's settings and OpenMP's wait policy. Both are read by their
// libraries before main() runs, so they cannot be set from the library's functions.
#include <unistd.h>

#include <cstdlib>
#include <cstring>

// jemalloc reads this symbol at its first allocation. Never give freed pages back to the OS
// (decay -1): an SD decode allocates and frees ~200 MB activations hundreds of times, and each
// page returned is faulted in again at ~12 us per 4 KiB in these VMs (measured: 71 k faults and
// 0.5 s system time per step with glibc, 5.6 k with tcmalloc, 1 with this). The resident set stays
// at its peak, like LibTorch's CUDA caching allocator; MALLOC_CONF in the environment overrides.
extern "C" {
__attribute__((used)) const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}

// OpenMP threads that wait spin for a short while only, unless the user chose a policy. After each
// parallel region libgomp's threads spin 300 k iterations (a few ms) before they sleep; with
// another process busy on a core the spinning thread holds that core while the one it waits for is
// descheduled. Never spinning (OMP_WAIT_POLICY=PASSIVE) costs 10-15% when the machine is idle
// (every region then wakes sleeping threads) and 45% next to niced background work; 30 k
// iterations keeps the idle speed and most of passive's gain under load (docs/results.md,
// bench/contention_bench). libgomp reads GOMP_SPINCOUNT / OMP_WAIT_POLICY once, with getenv, in
// its own initialiser, and has no API to change them afterwards.
//
// So the program defines getenv: the dynamic linker binds every library's getenv to the
// executable's definition first (as jemalloc's malloc replaces glibc's), libgomp's included, and
// this one answers "30000" for GOMP_SPINCOUNT when neither it nor OMP_WAIT_POLICY is set, and
// reads the environment unchanged otherwise. Nothing is written into the environment, so child
// processes (the benchmarks' Python references) get the user's. Tried before and wrong: setenv
// from .preinit_array (libc's initialiser then resets the environment to the one the process
// started with: libgomp kept spinning 300 k, and an earlier test took libgomp's display of an unset
// policy as "PASSIVE" for success) and from a library's initialiser (the loader initialises
// libgomp among the first libraries, before any of ours). tests/core/process_defaults_test.cpp
// checks the spin count libgomp ends up with.
extern "C" char** environ;

namespace {

constexpr char kDefaultSpinCount[] = "30000";

const char* find_variable(const char* name) {
  const size_t length = std::strlen(name);
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, name, length) == 0 && (*e)[length] == '=') return *e + length + 1;
  return nullptr;
}

}  // namespace

extern "C" __attribute__((visibility("default"), used)) char* getenv(const char* name) noexcept {
  const char* value = find_variable(name);
  if (!value && std::strcmp(name, "GOMP_SPINCOUNT") == 0 && !find_variable("OMP_WAIT_POLICY"))
    return const_cast<char*>(kDefaultSpinCount);
  return const_cast<char*>(value);
}
