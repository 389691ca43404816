// What VQGAN and the KL autoencoder share (taming's VQModel and ldm's AutoencoderKL): the ldm
// encoder and decoder, the 1x1 quant_conv / post_quant_conv around the latent, tiled encode and
// decode, and the adversarial training loss registered as "loss" like the originals.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "losses/autoencoder_gan_loss.h"
#include "models/autoencoder.h"
#include "models/ldm_coder.h"
#include "models/tiling.h"

namespace lf {

// The "loss" entry of a VQGAN / KL config: an object of loss options merged into the current ones
// (defaults of `kind` when there are none yet), or null for an inference-only model.
Json optional_loss_to_json(const std::optional<AutoencoderGANLossOptions>& loss);
void optional_loss_from_json(const Json& json, const std::string& kind,
                             std::optional<AutoencoderGANLossOptions>& loss);

class LdmAutoencoderImpl : public AutoencoderImpl {
 public:
  // moment_channels: quant_conv's output (VQ: embed_dim; KL: 2 * embed_dim); latent_channels:
  // post_quant_conv's input (embed_dim). loss: none for an inference-only model.
  LdmAutoencoderImpl(const LdmCoderOptions& ddconfig, int64_t moment_channels,
                     int64_t latent_channels, const std::optional<AutoencoderGANLossOptions>& loss);

  // x: [N, in_channels, H, W] in [-1, 1] -> quant_conv(encoder(x)) [N, moment_channels, H/f, W/f];
  // tiled when tiling is set.
  torch::Tensor encode_moments(const torch::Tensor& x);
  // z: [N, latent_channels, h, w] -> decoder(post_quant_conv(z)) [N, out_ch, h*f, w*f]; tiled when
  // tiling is set.
  torch::Tensor decode_latents(const torch::Tensor& z);
  // Tile sizes in image pixels for both directions (encode: multiples of f).
  void set_tiling(const TileOptions& options);
  const TileOptions& tiling() const { return tiling_; }

  int64_t factor() const { return encoder->factor(); }
  const LdmCoderOptions& ddconfig() const { return ddconfig_; }
  torch::Tensor last_layer() const { return decoder->conv_out->weight; }  // adaptive weight

  void set_step(int64_t step) override { step_ = step; }
  std::vector<torch::Tensor> discriminator_parameters() override;
  bool discriminator_active(int64_t step) const override;
  TrainOutput discriminator_step(const torch::Tensor& x,
                                 const torch::Tensor& reconstruction) override;

  LdmEncoder encoder{nullptr};
  LdmDecoder decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
  AutoencoderGANLoss loss{nullptr};  // "loss": absent for inference-only models

 protected:
  // Throws "[kind::train_step] ..." when the model was built without a loss.
  AutoencoderGANLoss& training_loss();

  int64_t step_ = 0;

 private:
  LdmCoderOptions ddconfig_;
  TileOptions tiling_;
};

}  // namespace lf
