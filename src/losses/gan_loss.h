// The adversarial pieces shared by the VQGAN and KL-autoencoder losses (taming's vqperceptual.py):
// hinge and vanilla discriminator losses, the disc_start gate and the adaptive generator weight.
#pragma once

#include <torch/torch.h>

#include <string>

namespace lf {

// logits: any shape. 0.5 * (mean relu(1 - real) + mean relu(1 + fake)) -> scalar.
torch::Tensor hinge_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake);
// 0.5 * (mean softplus(-real) + mean softplus(fake)) -> scalar.
torch::Tensor vanilla_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake);
// kind: "hinge" | "vanilla".
torch::Tensor discriminator_loss(const std::string& kind, const torch::Tensor& logits_real,
                                 const torch::Tensor& logits_fake);

// `value` while global_step < threshold, else `weight`.
inline double adopt_weight(double weight, int64_t global_step, int64_t threshold = 0,
                           double value = 0.0) {
  return global_step < threshold ? value : weight;
}

// ||d nll_loss / d last_layer|| / (||d g_loss / d last_layer|| + 1e-4), clamped to [0, 1e4],
// detached, times disc_weight -> scalar. Both gradients keep the graph (retain_graph), so the
// total loss can still be backpropagated. Throws lf::Error when a gradient cannot be taken (no
// graph from a loss to last_layer, e.g. under NoGradGuard).
torch::Tensor calculate_adaptive_weight(const torch::Tensor& nll_loss, const torch::Tensor& g_loss,
                                        const torch::Tensor& last_layer, double disc_weight);

}  // namespace lf
