// The processes of a data-parallel training run, on PyTorch's own engine (c10d): a TCPStore at
// MASTER_ADDR:MASTER_PORT (rank 0 serves it, or torchrun's agent does), a Gloo process group, and
// the collectives the trainer and the vector quantizer need (core/collectives.h, installed while
// this object lives). Every failure (a peer that died, hung past the timeout, a port in use, a
// wrong address) is an lf::Error of one line naming this rank, the operation and, when it can be
// told, the rank that went away.
#pragma once

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "core/collectives.h"
#include "distributed/dist_env.h"

namespace lf {

struct DataParallelOptions {
  std::string backend =
      "auto";  // auto | gloo | nccl (nccl: CUDA, where LibTorch was built with it)
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};  // a collective or the rendezvous
};

class DataParallel : public Collectives {
 public:
  DataParallel(const DistEnv& env, torch::Device device, DataParallelOptions options = {});
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  bool is_root() const { return env_.rank == 0; }
  const DistEnv& env() const { return env_; }
  const std::string& backend() const { return backend_; }

  void all_reduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  torch::Tensor all_gather_rows(const torch::Tensor& tensor) override;
  void barrier();
  // Starts a sum over ranks of `tensor` (contiguous) in place; wait_for(work) completes it.
  c10::intrusive_ptr<c10d::Work> start_all_reduce(torch::Tensor& tensor);
  void wait_for(const c10::intrusive_ptr<c10d::Work>& work, const char* what);

  // Rank 0's parameters and buffers copied into every rank's module.
  void broadcast_module(torch::nn::Module& module);
  void broadcast_buffers(torch::nn::Module& module);
  // Sums over ranks, in float64 (log values, counts).
  std::vector<double> sum(const std::vector<double>& values);
  // True on every rank when it is true on any.
  bool any(bool flag);
  // lf::Error when any rank's parameters and buffers differ from rank 0's, bit for bit (compared
  // through a 64-bit hash of their bytes).
  void check_in_sync(const torch::nn::Module& module, const std::string& what);

  // Bytes this process sent into all-reduces, and the time it waited on collectives (seconds).
  int64_t reduced_bytes() const { return reduced_bytes_; }
  double wait_seconds() const { return wait_seconds_; }

 private:
  // The ranks whose process is gone (same machine only): for error messages.
  std::string missing_peers();
  [[noreturn]] void fail_collective(const char* what, const std::string& reason);

  DistEnv env_;
  torch::Device device_;
  std::string backend_;
  DataParallelOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  int64_t reduced_bytes_ = 0;
  double wait_seconds_ = 0;
};

}  // namespace lf
