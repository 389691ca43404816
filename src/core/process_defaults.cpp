// Process start-up defaults, compiled into every executable (CMakeLists.txt: an INTERFACE source of
// latentforge_lib): the allocator's settings and OpenMP's wait policy. Both are read by their
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

namespace {

bool set_wait_policy = false;

// OpenMP threads that finish a parallel region spin (libgomp: 300 k iterations) before sleeping;
// with another process busy on a core the spinning thread holds that core while the one it waits
// for is descheduled (training fell from 1.5 to 0.4 step/s). PASSIVE sleeps at once. libgomp reads
// the variable in its own constructor, which runs before any of ours, hence .preinit_array (run by
// the dynamic loader before every library's initialiser). A user's own setting wins. `environ` is
// not set up yet at that point: read envp, and let setenv extend a copy of it.
void choose_omp_wait_policy(int, char**, char** envp) {
  for (char** e = envp; e && *e; ++e)
    if (std::strncmp(*e, "OMP_WAIT_POLICY=", 16) == 0 ||
        std::strncmp(*e, "GOMP_SPINCOUNT=", 15) == 0)
      return;
  if (!environ) environ = envp;
  set_wait_policy = setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0;
}

__attribute__((section(".preinit_array"),
               used)) void (*const preinit_wait_policy)(int, char**,
                                                        char**) = &choose_omp_wait_policy;

// libgomp has read it by now (libc has usually restored envp already); child processes, such as
// the Python reference of the benchmarks, must get the user's environment unchanged.
__attribute__((constructor)) void restore_environment() {
  if (set_wait_policy) unsetenv("OMP_WAIT_POLICY");
}

}  // namespace
