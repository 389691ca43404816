// `latentforge train --nproc N` without torchrun: N copies of this program on this machine, each
// given the variables torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, MASTER_PORT a free port) and a share of the cores, in a process group of
// their own. SIGINT / SIGTERM to the launcher (a Ctrl-C at the terminal) are passed on to every
// worker once (they stop together, with a checkpoint). When a worker fails, the
// others are stopped and the failure is reported naming its rank.
#pragma once

#include <string>
#include <vector>

namespace lf {

struct LocalLaunch {
  std::vector<std::string> argv;  // the worker's command line (this program and its arguments)
  int nproc = 2;
  int threads_per_worker = 0;  // LF_THREADS for each worker; 0: the cores divided evenly
  double grace_seconds = 30;   // after a failure, how long the others get before SIGKILL
};

// Runs the workers to their end: 0 when all succeeded, else the failed rank's exit code (128 +
// signal when killed). Throws lf::Error when they cannot be started.
int launch_local_workers(const LocalLaunch& launch);

// A TCP port free on 127.0.0.1 now (the kernel's choice).
int free_local_port();

}  // namespace lf
