// Frechet distance between two Gaussians fitted to feature sets (FID's formula, here in the
// features of our own classifier): |mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace lf {

struct FeatureStats {
  torch::Tensor mean;  // [D] float64
  torch::Tensor cov;   // [D, D] float64, unbiased (divided by N - 1)
  int64_t count = 0;   // N
};

// features: [N, D] (any float dtype, any device) with N >= 2 -> mean and covariance in float64 on
// the CPU.
FeatureStats feature_stats(const torch::Tensor& features);

// In float64 through two symmetric eigendecompositions (Ca^1/2, then the symmetric PSD product
// Ca^1/2 Cb Ca^1/2), tiny negative eigenvalues clamped to 0: stable where a general sqrtm goes
// complex. The result is clamped to >= 0.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

}  // namespace lf
