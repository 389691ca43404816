// ldm's diagonal Gaussian posterior: see diagonal_gaussian.h.
#include "models/diagonal_gaussian.h"

#include <cmath>

#include "core/error.h"

namespace lf {

DiagonalGaussian::DiagonalGaussian(const torch::Tensor& moments) {
  if (moments.dim() != 4 || moments.size(1) % 2 != 0)
    fail("DiagonalGaussian", "expected moments [N, 2C, h, w], got {}", shape_str(moments.sizes()));
  auto parts = moments.chunk(2, 1);
  mean = parts[0];
  logvar = parts[1].clamp(-30.0, 20.0);
  std = torch::exp(0.5 * logvar);
  var = torch::exp(logvar);
}

torch::Tensor DiagonalGaussian::sample() const {
  return mean + std * torch::randn_like(mean);
}

torch::Tensor DiagonalGaussian::kl() const {
  return 0.5 * (mean.pow(2) + var - 1.0 - logvar).sum({1, 2, 3});
}

torch::Tensor DiagonalGaussian::nll(const torch::Tensor& x) const {
  const double log_two_pi = std::log(2.0 * M_PI);
  return 0.5 * (log_two_pi + logvar + (x - mean).pow(2) / var).sum({1, 2, 3});
}

}  // namespace lf
