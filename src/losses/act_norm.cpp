// ActNorm with data-dependent initialisation.
#include "losses/act_norm.h"

#include "core/error.h"

namespace lf {

ActNormImpl::ActNormImpl(int64_t num_features) : num_features_(num_features) {
  if (num_features <= 0) fail("act_norm", "expected num_features > 0, got {}", num_features);
  loc = register_parameter("loc", torch::zeros({1, num_features, 1, 1}));
  scale = register_parameter("scale", torch::ones({1, num_features, 1, 1}));
  initialized_ = register_buffer("initialized", torch::zeros({}, torch::kUInt8));
}

void ActNormImpl::initialize(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const auto flat = x.detach().transpose(0, 1).reshape({num_features_, -1});  // [C, N*H*W]
  const auto mean = flat.mean(1).view({1, -1, 1, 1});
  const auto std = flat.std(1, /*unbiased=*/true).view({1, -1, 1, 1});
  loc.copy_(-mean);
  scale.copy_(1.0 / (std + 1e-6));
  initialized_.fill_(1);
}

torch::Tensor ActNormImpl::forward(torch::Tensor x) {
  const bool flat = x.dim() == 2;
  if (!(flat || x.dim() == 4) || x.size(1) != num_features_)
    fail("act_norm", "expected [N, {0}, H, W] or [N, {0}], got {1}", num_features_,
         shape_str(x.sizes()));
  if (flat) x = x.view({x.size(0), x.size(1), 1, 1});
  if (is_training() && !initialized()) initialize(x);
  auto h = scale * (x + loc);
  return flat ? h.view({h.size(0), h.size(1)}) : h;
}

}  // namespace lf
