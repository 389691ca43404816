// The training loss of VQGAN (taming's VQLPIPSWithDiscriminator) and of the KL autoencoder (ldm's
// LPIPSWithDiscriminator): L1 + LPIPS reconstruction, the codebook loss or the KL term with a
// learned output log-variance, and a PatchGAN discriminator whose generator term is weighted
// adaptively by the ratio of gradient norms at the decoder's last layer.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"
#include "losses/patch_discriminator.h"

namespace lf {

struct AutoencoderGANLossOptions {
  // "vq": VQLPIPSWithDiscriminator | "kl": LPIPSWithDiscriminator
  TORCH_ARG(std::string, kind) = "vq";
  TORCH_ARG(int64_t, disc_start) = 0;    // generator's adversarial term and disc updates from here
  TORCH_ARG(double, disc_weight) = 1.0;  // times the adaptive weight
  TORCH_ARG(double, disc_factor) = 1.0;
  TORCH_ARG(std::string, disc_loss) = "hinge";  // "hinge" | "vanilla"
  TORCH_ARG(int64_t, disc_in_channels) = 3;
  TORCH_ARG(int64_t, disc_num_layers) = 3;
  TORCH_ARG(int64_t, disc_ndf) = 64;
  TORCH_ARG(bool, use_actnorm) = false;  // ActNorm instead of BatchNorm in the discriminator
  TORCH_ARG(double, pixel_weight) = 1.0;
  TORCH_ARG(double, perceptual_weight) = 1.0;  // 0, or no perceptual_weights file: term off
  // LPIPS weights (VGG16 features + linear heads) as safetensors; empty: the perceptual term is
  // off and the constructor logs so once.
  TORCH_ARG(std::string, perceptual_weights) = "";
  TORCH_ARG(double, codebook_weight) = 1.0;  // kind vq
  TORCH_ARG(double, kl_weight) = 1e-6;       // kind kl (SD's first-stage value)
  TORCH_ARG(double, logvar_init) = 0.0;      // kind kl: initial learned output log-variance
};
void to_json(Json& json, const AutoencoderGANLossOptions& options);
// Present keys only; unknown keys throw.
void from_json(const Json& json, AutoencoderGANLossOptions& options);

struct LossOutput {
  torch::Tensor loss;  // scalar
  // Every term: "loss_rec", "loss_p", "loss_g", "d_weight", ...
  std::map<std::string, double> logs;
};

class AutoencoderGANLossImpl : public torch::nn::Module {
 public:
  explicit AutoencoderGANLossImpl(AutoencoderGANLossOptions options);

  // The generator/autoencoder side. x, x_rec: [N, C, H, W] in [-1, 1]. `regulariser`: kind vq the
  // quantizer's (already weighted) codebook+commitment loss, scalar; kind kl the per-sample KL [N].
  // `last_layer`: the decoder's conv_out.weight (adaptive weight). step: the global step.
  LossOutput generator_loss(const torch::Tensor& x, const torch::Tensor& x_rec,
                            const torch::Tensor& regulariser, int64_t step,
                            const torch::Tensor& last_layer);
  // The discriminator side on x and x_rec (detached inside).
  LossOutput discriminator_loss(const torch::Tensor& x, const torch::Tensor& x_rec, int64_t step);
  bool discriminator_active(int64_t step) const { return step >= options_.disc_start(); }
  bool has_perceptual() const;

  const AutoencoderGANLossOptions& options() const { return options_; }

  // The discriminator's parameters (registered as "discriminator": keys discriminator.main.*).
  std::vector<torch::Tensor> discriminator_parameters();

  torch::Tensor logvar;  // kind kl: parameter "logvar" (scalar)

 private:
  // x, y: [N, C, H, W] -> [N, 1, 1, 1]; LPIPS follows x's device and dtype.
  torch::Tensor perceptual_distance(const torch::Tensor& x, const torch::Tensor& y);
  // -mean(D(x_rec)), with its gradient through x_rec (see the .cpp).
  torch::Tensor adversarial_loss(const torch::Tensor& x_rec);
  // The adaptive weight, or 0 where it cannot be taken outside training (as taming's try/except).
  torch::Tensor adaptive_weight(const torch::Tensor& nll_loss, const torch::Tensor& g_loss,
                                const torch::Tensor& last_layer);

  AutoencoderGANLossOptions options_;
  PatchDiscriminator discriminator_{nullptr};  // "discriminator"
  struct Perceptual;                           // LPIPS, frozen, NOT registered (not in checkpoints)
  std::shared_ptr<Perceptual> perceptual_;     // null when the term is off
  std::string perceptual_off_;  // why the term is off; logged at the first generator_loss
};
TORCH_MODULE(AutoencoderGANLoss);

}  // namespace lf
