// The KL autoencoder of latent diffusion / Stable Diffusion (ldm's AutoencoderKL): ldm encoder with
// double_z -> quant_conv -> diagonal Gaussian posterior over embed_dim channels -> post_quant_conv
// -> ldm decoder, trained with L1 + LPIPS + KL against a PatchGAN discriminator. Module names
// equal the CompVis checkpoint keys.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "models/diagonal_gaussian.h"
#include "models/ldm_autoencoder.h"

namespace lf {

struct AutoencoderKLOptions {
  TORCH_ARG(LdmCoderOptions, ddconfig) = LdmCoderOptions();  // SD 1.x
  TORCH_ARG(int64_t, embed_dim) = 4;
  // Multiplies the posterior mean into the "latents" a diffusion model sees (SD 1.x: 0.18215).
  TORCH_ARG(double, scale_factor) = 1.0;
  TORCH_ARG(std::optional<AutoencoderGANLossOptions>,
            loss) = AutoencoderGANLossOptions().kind("kl");
};
void to_json(Json& json, const AutoencoderKLOptions& options);
void from_json(const Json& json, AutoencoderKLOptions& options);  // present keys; unknown throw

// Presets: "sd_v1" (Stable Diffusion 1.x, 8x downsampling to 4 channels, scale 0.18215) and
// "fashion32" (1x32x32 -> 4x8x8: trains in minutes on a CPU).
AutoencoderKLOptions autoencoder_kl_preset(const std::string& name);
std::vector<std::string> autoencoder_kl_preset_names();

class AutoencoderKLImpl : public LdmAutoencoderImpl {
 public:
  explicit AutoencoderKLImpl(AutoencoderKLOptions options = {});

  std::string kind() const override { return "autoencoder_kl"; }
  // Posterior sample -> decoder; loss from the configured loss with the posterior's KL.
  TrainOutput train_step(const torch::Tensor& x) override;
  // x -> {"mean", "logvar"} of the posterior [N, embed_dim, H/f, W/f] and "latents" =
  // scale_factor * mean.
  TensorMap encode(const torch::Tensor& x) override;
  // "latents" (divided by scale_factor) or else "mean".
  torch::Tensor decode(const TensorMap& code) override;
  Json options_json() const override;

  DiagonalGaussian posterior(const torch::Tensor& x);
  const AutoencoderKLOptions& options() const { return options_; }

 private:
  AutoencoderKLOptions options_;
};
TORCH_MODULE(AutoencoderKL);

}  // namespace lf
