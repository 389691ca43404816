// Collective operations for code that must agree across the processes of a data-parallel training
// run (the vector quantizer's EMA statistics, k-means initialisation and dead-code restarts)
// without knowing how the processes talk: src/distributed/ installs an implementation while a run
// trains; without one (a single process) every call is the identity.
#pragma once

#include <torch/torch.h>

namespace lf {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;  // in place, on every rank
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  // Every rank's rows concatenated along dim 0 in rank order (rows may differ in number).
  virtual torch::Tensor all_gather_rows(const torch::Tensor& tensor) = 0;
};

// The installed implementation, or nullptr in a single process.
Collectives* active_collectives();
// Installs `collectives` (nullptr: none) until replaced; the caller keeps it alive meanwhile.
void set_active_collectives(Collectives* collectives);

// The calls as code outside src/distributed/ uses them: identities without collectives.
int collective_rank();        // 0 in a single process
int collective_world_size();  // 1 in a single process
void all_reduce_sum(torch::Tensor& tensor);
void broadcast_from(torch::Tensor& tensor, int root);
torch::Tensor all_gather_rows(const torch::Tensor& tensor);

}  // namespace lf
