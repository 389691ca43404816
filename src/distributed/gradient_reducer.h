// Gradients averaged over the ranks of a data-parallel run the way DDP's Reducer does it: the
// parameters are packed into buckets of about 25 MB in reverse registration order (the order
// backward produces their gradients); a hook on each parameter copies its gradient into its bucket
// as soon as autograd has it, and a bucket whose gradients are all in starts its all-reduce while
// backward goes on (buckets start in order, so every rank issues the same collectives). finish()
// starts what is left (parameters with no gradient on this rank count as zeros), waits, and writes
// the averages back; a parameter no rank used keeps no gradient, as in a single process.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "distributed/data_parallel.h"

namespace lf {

class GradientReducer {
 public:
  GradientReducer(DataParallel& group, std::vector<torch::Tensor> params,
                  int64_t bucket_bytes = int64_t{25} << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void prepare();  // before backward
  void finish();   // after backward: every rank's gradients averaged into .grad

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    torch::Tensor flat;          // the gradients, packed
    size_t ready = 0;
    bool started = false;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void on_gradient(size_t param, const torch::Tensor& grad);
  void start_ready_buckets();

  DataParallel& group_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_, offset_of_;
  std::vector<bool> has_grad_;
  std::vector<Bucket> buckets_;
  size_t next_bucket_ = 0;  // buckets start in this order
  std::vector<unsigned> hooks_;
  bool collecting_ = false;
};

}  // namespace lf
