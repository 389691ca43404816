// Bucketed, overlapped gradient averaging: see gradient_reducer.h.
#include "distributed/gradient_reducer.h"

#include "core/error.h"

namespace lf {

GradientReducer::GradientReducer(DataParallel& group, std::vector<torch::Tensor> params,
                                 int64_t bucket_bytes)
    : group_(group), params_(std::move(params)) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  offset_of_.assign(n, 0);
  has_grad_.assign(n, false);
  // Reverse registration order, split by size, one dtype and device per bucket.
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const auto& p = params_[k];
    const int64_t size = p.numel() * p.element_size();
    const bool new_bucket =
        buckets_.empty() || bytes + size > bucket_bytes ||
        params_[buckets_.back().params.front()].scalar_type() != p.scalar_type() ||
        params_[buckets_.back().params.front()].device() != p.device();
    if (new_bucket) {
      buckets_.emplace_back();
      bytes = 0;
    }
    bucket_of_[k] = buckets_.size() - 1;
    buckets_.back().params.push_back(k);
    bytes += size;
  }
  for (auto& b : buckets_) {
    int64_t numel = 0;
    for (size_t k : b.params) {
      offset_of_[k] = static_cast<size_t>(numel);
      numel += params_[k].numel();
    }
    b.flat = torch::zeros({numel}, params_[b.params.front()].options());
  }
  for (size_t k = 0; k < n; ++k)
    hooks_.push_back(params_[k].register_hook([this, k](torch::Tensor grad) {
      on_gradient(k, grad);
      return grad;
    }));
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradientReducer::prepare() {
  for (auto& b : buckets_) {
    b.ready = 0;
    b.started = false;
    b.work.reset();
    b.flat.zero_();
  }
  std::fill(has_grad_.begin(), has_grad_.end(), false);
  next_bucket_ = 0;
  collecting_ = true;
}

void GradientReducer::on_gradient(size_t k, const torch::Tensor& grad) {
  if (!collecting_ || has_grad_[k]) return;
  has_grad_[k] = true;
  Bucket& b = buckets_[bucket_of_[k]];
  b.flat.narrow(0, static_cast<int64_t>(offset_of_[k]), grad.numel())
      .copy_(grad.detach().reshape({-1}));
  if (++b.ready == b.params.size()) start_ready_buckets();
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() &&
         buckets_[next_bucket_].ready == buckets_[next_bucket_].params.size()) {
    Bucket& b = buckets_[next_bucket_++];
    b.work = group_.start_all_reduce(b.flat);
    b.started = true;
  }
}

void GradientReducer::finish() {
  if (!collecting_) fail("distributed", "gradient reducer: finish() without prepare()");
  collecting_ = false;
  // Which parameters got a gradient on any rank: those keep one, the rest stay without.
  auto used = torch::zeros({static_cast<int64_t>(params_.size())}, torch::kFloat32);
  auto used_a = used.accessor<float, 1>();
  for (size_t k = 0; k < params_.size(); ++k) used_a[static_cast<int64_t>(k)] = has_grad_[k];
  for (auto& b : buckets_) b.ready = b.params.size();  // the rest count as zeros
  start_ready_buckets();
  used = used.to(buckets_.empty() ? torch::Device(torch::kCPU) : buckets_[0].flat.device());
  group_.all_reduce_sum(used);
  used = used.to(torch::kCPU);
  const double scale = 1.0 / group_.world_size();
  for (auto& b : buckets_) {
    group_.wait_for(b.work, "gradient all_reduce");
    b.flat.mul_(scale);
    for (size_t k : b.params) {
      auto& p = params_[k];
      if (used[static_cast<int64_t>(k)].item<float>() == 0) {
        p.mutable_grad() = torch::Tensor();
        continue;
      }
      auto averaged = b.flat.narrow(0, static_cast<int64_t>(offset_of_[k]), p.numel()).view_as(p);
      if (p.grad().defined())
        p.mutable_grad().copy_(averaged);
      else
        p.mutable_grad() = averaged.clone();
    }
  }
}

}  // namespace lf
