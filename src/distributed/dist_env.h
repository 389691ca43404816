// Where a process stands in a data-parallel run, from the variables torchrun sets (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; TORCHELASTIC_* when its agent
// holds the store) or that `latentforge train --nproc N` sets for its own workers.
#pragma once

#include <optional>
#include <string>

namespace lf {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun's agent already serves the TCPStore at MASTER_ADDR:MASTER_PORT; workers join it as
  // clients under the prefix "/worker/attempt_<restart count>" (as torch.distributed does).
  bool agent_store = false;
  std::string store_prefix;

  // nullopt when WORLD_SIZE is unset (a single process); lf::Error naming the variable when one is
  // missing or malformed.
  static std::optional<DistEnv> from_environment();
};

}  // namespace lf
