// Frechet distance of Gaussian feature statistics, via symmetric eigendecompositions.
#include "eval/frechet_distance.h"

#include <algorithm>

#include "core/error.h"

namespace lf {

namespace {

// Symmetric PSD square root: V diag(sqrt(max(w, 0))) V^T. m: [D, D] float64 -> [D, D].
torch::Tensor sqrt_psd(const torch::Tensor& m) {
  const auto [w, v] = torch::linalg_eigh(m);
  return torch::matmul(v * w.clamp_min(0).sqrt().unsqueeze(0), v.transpose(0, 1));
}

void check_stats(const FeatureStats& s, const char* which) {
  if (!s.mean.defined() || !s.cov.defined() || s.mean.dim() != 1 || s.cov.dim() != 2 ||
      s.cov.size(0) != s.mean.size(0) || s.cov.size(1) != s.mean.size(0))
    fail("frechet_distance", "{}: expected mean [D] and cov [D, D], got {} and {}", which,
         s.mean.defined() ? shape_str(s.mean.sizes()) : "none",
         s.cov.defined() ? shape_str(s.cov.sizes()) : "none");
}

}  // namespace

FeatureStats feature_stats(const torch::Tensor& features) {
  if (!features.defined() || features.dim() != 2)
    fail("feature_stats", "expected features [N, D], got {}",
         features.defined() ? shape_str(features.sizes()) : "none");
  const int64_t n = features.size(0);
  if (n < 2)
    fail("feature_stats", "expected at least 2 feature vectors for a covariance, got {}", n);
  const auto x = features.detach().to(torch::kCPU, torch::kFloat64);  // [N, D]
  const auto mean = x.mean(0);                                        // [D]
  const auto centered = x - mean;
  const auto cov = torch::matmul(centered.transpose(0, 1), centered) / double(n - 1);  // [D, D]
  return {mean, cov, n};
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  check_stats(a, "first");
  check_stats(b, "second");
  if (a.mean.size(0) != b.mean.size(0))
    fail("frechet_distance", "feature dimensions differ: {} vs {}", a.mean.size(0), b.mean.size(0));
  const auto mu_a = a.mean.to(torch::kCPU, torch::kFloat64);
  const auto mu_b = b.mean.to(torch::kCPU, torch::kFloat64);
  // Symmetrised: a covariance summed in another order may be off symmetric by rounding.
  auto cov_a = a.cov.to(torch::kCPU, torch::kFloat64);
  auto cov_b = b.cov.to(torch::kCPU, torch::kFloat64);
  cov_a = (cov_a + cov_a.transpose(0, 1)) / 2;
  cov_b = (cov_b + cov_b.transpose(0, 1)) / 2;
  // tr((Ca Cb)^1/2) = tr((Ca^1/2 Cb Ca^1/2)^1/2): same eigenvalues, and the latter is symmetric.
  const auto root_a = sqrt_psd(cov_a);
  auto inner = torch::matmul(torch::matmul(root_a, cov_b), root_a);
  inner = (inner + inner.transpose(0, 1)) / 2;
  const double tr_covmean = torch::linalg_eigvalsh(inner).clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (mu_a - mu_b).square().sum().item<double>();
  const double fd =
      mean_term + cov_a.trace().item<double>() + cov_b.trace().item<double>() - 2 * tr_covmean;
  return std::max(fd, 0.0);
}

}  // namespace lf
