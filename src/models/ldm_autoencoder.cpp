// Shared VQGAN / KL autoencoder parts: see ldm_autoencoder.h.
#include "models/ldm_autoencoder.h"

#include "core/error.h"
#include "models/ae.h"

namespace lf {
namespace nn = torch::nn;

Json optional_loss_to_json(const std::optional<AutoencoderGANLossOptions>& loss) {
  return loss ? Json(*loss) : Json(nullptr);
}

void optional_loss_from_json(const Json& json, const std::string& kind,
                             std::optional<AutoencoderGANLossOptions>& loss) {
  if (json.is_null()) {
    loss.reset();
    return;
  }
  auto options = loss.value_or(AutoencoderGANLossOptions().kind(kind));
  from_json(json, options);
  loss = options;
}

LdmAutoencoderImpl::LdmAutoencoderImpl(const LdmCoderOptions& ddconfig, int64_t moment_channels,
                                       int64_t latent_channels,
                                       const std::optional<AutoencoderGANLossOptions>& loss_options)
    : ddconfig_(ddconfig) {
  if (moment_channels <= 0 || latent_channels <= 0)
    fail("ldm autoencoder", "embed_dim: expected a positive channel count, got {}",
         latent_channels);
  encoder = register_module("encoder", LdmEncoder(ddconfig));
  decoder = register_module("decoder", LdmDecoder(ddconfig));
  const int64_t z_out = ddconfig.double_z() ? 2 * ddconfig.z_channels() : ddconfig.z_channels();
  quant_conv =
      register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(z_out, moment_channels, 1)));
  post_quant_conv = register_module(
      "post_quant_conv", nn::Conv2d(nn::Conv2dOptions(latent_channels, ddconfig.z_channels(), 1)));
  if (loss_options) loss = register_module("loss", AutoencoderGANLoss(*loss_options));
}

torch::Tensor LdmAutoencoderImpl::encode_moments(const torch::Tensor& x) {
  check_image(x, ddconfig_.in_channels(), factor(), (kind() + "::encode").c_str());
  const auto run = [this](const torch::Tensor& tile) { return quant_conv(encoder(tile)); };
  return tiled_apply(run, x, tiling_, 1, factor());
}

torch::Tensor LdmAutoencoderImpl::decode_latents(const torch::Tensor& z) {
  check_image(z, post_quant_conv->options.in_channels(), 1, (kind() + "::decode").c_str());
  const auto run = [this](const torch::Tensor& tile) { return decoder(post_quant_conv(tile)); };
  TileOptions latent_tiling;
  if (tiling_.enabled()) {  // the same tiles as in image space
    latent_tiling.tile = std::max<int64_t>(1, tiling_.tile / factor());
    latent_tiling.overlap = tiling_.overlap / factor();
  }
  return tiled_apply(run, z, latent_tiling, factor(), 1);
}

void LdmAutoencoderImpl::set_tiling(const TileOptions& options) {
  if (options.enabled() && (options.tile % factor() != 0 || options.overlap < 0 ||
                            options.overlap >= options.tile || options.overlap % factor() != 0))
    fail("tiling",
         "expected a tile side and an overlap that are multiples of the downsampling factor {}, "
         "with 0 <= overlap < tile, got tile {}, overlap {}",
         factor(), options.tile, options.overlap);
  tiling_ = options;
}

std::vector<torch::Tensor> LdmAutoencoderImpl::discriminator_parameters() {
  return loss ? loss->discriminator_parameters() : std::vector<torch::Tensor>{};
}

bool LdmAutoencoderImpl::discriminator_active(int64_t step) const {
  return loss && loss->discriminator_active(step);
}

TrainOutput LdmAutoencoderImpl::discriminator_step(const torch::Tensor& x,
                                                   const torch::Tensor& reconstruction) {
  const LossOutput d = training_loss()->discriminator_loss(x, reconstruction.detach(), step_);
  TrainOutput out;
  out.loss = d.loss;
  out.logs = d.logs;
  return out;
}

AutoencoderGANLoss& LdmAutoencoderImpl::training_loss() {
  if (!loss)
    fail((kind() + "::train_step").c_str(),
         "this model was built without a training loss (loss: null, as for imported inference "
         "weights); give the model config a 'loss' section to train it");
  return loss;
}

}  // namespace lf
