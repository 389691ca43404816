// The active collectives: see collectives.h.
#include "core/collectives.h"

#include <atomic>

namespace lf {

namespace {

std::atomic<Collectives*> g_active{nullptr};

}  // namespace

Collectives* active_collectives() {
  return g_active.load();
}

void set_active_collectives(Collectives* collectives) {
  g_active.store(collectives);
}

int collective_rank() {
  const Collectives* c = active_collectives();
  return c ? c->rank() : 0;
}

int collective_world_size() {
  const Collectives* c = active_collectives();
  return c ? c->world_size() : 1;
}

void all_reduce_sum(torch::Tensor& tensor) {
  if (Collectives* c = active_collectives(); c && c->world_size() > 1) c->all_reduce_sum(tensor);
}

void broadcast_from(torch::Tensor& tensor, int root) {
  if (Collectives* c = active_collectives(); c && c->world_size() > 1) c->broadcast(tensor, root);
}

torch::Tensor all_gather_rows(const torch::Tensor& tensor) {
  Collectives* c = active_collectives();
  return c && c->world_size() > 1 ? c->all_gather_rows(tensor) : tensor;
}

}  // namespace lf
