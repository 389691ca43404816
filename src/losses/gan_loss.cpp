// GAN loss terms of taming's vqperceptual.py.
#include "losses/gan_loss.h"

#include "core/error.h"

namespace lf {

torch::Tensor hinge_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake) {
  const auto loss_real = torch::relu(1.0 - logits_real).mean();
  const auto loss_fake = torch::relu(1.0 + logits_fake).mean();
  return 0.5 * (loss_real + loss_fake);
}

torch::Tensor vanilla_d_loss(const torch::Tensor& logits_real, const torch::Tensor& logits_fake) {
  namespace F = torch::nn::functional;
  return 0.5 * (F::softplus(-logits_real).mean() + F::softplus(logits_fake).mean());
}

torch::Tensor discriminator_loss(const std::string& kind, const torch::Tensor& logits_real,
                                 const torch::Tensor& logits_fake) {
  if (kind == "hinge") return hinge_d_loss(logits_real, logits_fake);
  if (kind == "vanilla") return vanilla_d_loss(logits_real, logits_fake);
  fail("discriminator_loss", "expected kind \"hinge\" or \"vanilla\", got \"{}\"", kind);
}

torch::Tensor calculate_adaptive_weight(const torch::Tensor& nll_loss, const torch::Tensor& g_loss,
                                        const torch::Tensor& last_layer, double disc_weight) {
  if (!last_layer.defined() || !last_layer.requires_grad())
    fail("calculate_adaptive_weight", "last_layer must be a defined tensor that requires grad");
  const auto grad_of = [&](const torch::Tensor& loss, const char* name) {
    if (!loss.requires_grad())
      fail("calculate_adaptive_weight", "{} has no graph (computed without grad?)", name);
    try {
      return torch::autograd::grad({loss}, {last_layer}, /*grad_outputs=*/{},
                                   /*retain_graph=*/true)[0];
    } catch (const c10::Error& e) {
      fail("calculate_adaptive_weight", "d {} / d last_layer failed: {}", name,
           e.what_without_backtrace());
    }
  };
  const auto nll_grads = grad_of(nll_loss, "nll_loss");
  const auto g_grads = grad_of(g_loss, "g_loss");
  const auto d_weight = (nll_grads.norm() / (g_grads.norm() + 1e-4)).clamp(0.0, 1e4).detach();
  return d_weight * disc_weight;
}

}  // namespace lf
