// The KL autoencoder's posterior (ldm's DiagonalGaussianDistribution): moments [N, 2C, h, w] split
// into mean and log-variance, the log-variance clamped to [-30, 20].
#pragma once

#include <torch/torch.h>

namespace lf {

class DiagonalGaussian {
 public:
  explicit DiagonalGaussian(const torch::Tensor& moments);  // [N, 2C, h, w]

  torch::Tensor sample() const;  // mean + std * eps, eps ~ N(0, I) from the global generator
  const torch::Tensor& mode() const { return mean; }
  // KL(q || N(0, I)) summed over C, h, w: [N]
  torch::Tensor kl() const;
  // Negative log-likelihood of x summed over C, h, w: [N]
  torch::Tensor nll(const torch::Tensor& x) const;

  torch::Tensor mean, logvar, std, var;
};

}  // namespace lf
