// Shared parts of the priors: the teacher-forced cross-entropy and input checks.
#include "priors/prior.h"

#include <cmath>

#include "core/error.h"

namespace lf {

void PriorImpl::check_inputs(const torch::Tensor& codes, const PriorCondition& cond,
                             const char* where) const {
  if (codes.dim() != 3 || codes.scalar_type() != torch::kInt64)
    fail(where, "codes: expected [N, h, w] int64, got {} {}", shape_str(codes.sizes()),
         c10::toString(codes.scalar_type()));
  if (codes.numel() > 0 &&
      (codes.min().item<int64_t>() < 0 || codes.max().item<int64_t>() >= num_codes()))
    fail(where, "codes: expected values in [0, {}), got [{}, {}]", num_codes(),
         codes.min().item<int64_t>(), codes.max().item<int64_t>());
  const int64_t n = codes.size(0);
  if (num_classes() > 0) {
    if (!cond.labels.defined())
      fail(where, "a class-conditional prior needs labels (0..{})", num_classes() - 1);
    if (cond.labels.dim() != 1 || cond.labels.size(0) != n)
      fail(where, "labels: expected [{}], got {}", n, shape_str(cond.labels.sizes()));
    if (n > 0 && (cond.labels.min().item<int64_t>() < 0 ||
                  cond.labels.max().item<int64_t>() >= num_classes()))
      fail(where, "labels: expected classes in [0, {}), got [{}, {}]", num_classes(),
           cond.labels.min().item<int64_t>(), cond.labels.max().item<int64_t>());
  }
  if (cond_num_codes() > 0) {
    if (!cond.cond_codes.defined())
      fail(where, "an image-conditional prior needs the condition's codes");
    const auto& c = cond.cond_codes;
    if (c.dim() != 3 || c.size(0) != n || c.scalar_type() != torch::kInt64)
      fail(where, "cond_codes: expected [{}, hc, wc] int64, got {}", n, shape_str(c.sizes()));
    if (c.numel() > 0 &&
        (c.min().item<int64_t>() < 0 || c.max().item<int64_t>() >= cond_num_codes()))
      fail(where, "cond_codes: expected values in [0, {}), got [{}, {}]", cond_num_codes(),
           c.min().item<int64_t>(), c.max().item<int64_t>());
  }
}

TrainOutput PriorImpl::train_batch(const Batch& batch) {
  if (!batch.codes.defined())
    fail((kind() + "::train_batch").c_str(),
         "the batch has no code maps (a prior trains on a first-stage model's codes)");
  PriorCondition cond;
  if (num_classes() > 0) cond.labels = batch.labels;
  if (cond_num_codes() > 0) cond.cond_codes = batch.cond_codes;
  const auto out = logits(batch.codes, cond);  // [N, K, h, w]
  TrainOutput result;
  result.loss = torch::nn::functional::cross_entropy(out, batch.codes);
  const double nll = result.loss.item<double>();
  result.logs["loss_nll"] = nll;
  result.logs["bits_per_code"] = nll / std::log(2.0);
  return result;
}

}  // namespace lf
