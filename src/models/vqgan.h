// VQGAN (taming-transformers' VQModel): ldm encoder -> quant_conv -> vector quantizer ->
// post_quant_conv -> ldm decoder, trained with L1 + LPIPS + codebook loss against a PatchGAN
// discriminator. Module names equal taming's checkpoint keys.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "models/ldm_autoencoder.h"
#include "models/vector_quantizer.h"

namespace lf {

struct VQGANOptions {
  TORCH_ARG(LdmCoderOptions, ddconfig) = LdmCoderOptions()
                                             .ch(128)
                                             .ch_mult({1, 1, 2, 2, 4})
                                             .attn_resolutions({16})
                                             .z_channels(256)
                                             .double_z(false);
  TORCH_ARG(int64_t, embed_dim) = 256;  // code dimension
  TORCH_ARG(int64_t, n_embed) = 1024;   // codebook size
  // Further quantizer options (EMA, k-means init, dead-code restart, ...); num_codes and code_dim
  // always come from n_embed and embed_dim. Default: taming's quantizer (beta 0.25 on the
  // codebook term, "legacy").
  TORCH_ARG(VectorQuantizerOptions,
            quantizer) = VectorQuantizerOptions(1024, 256).legacy_beta(true);
  // Training loss; none ("loss": null) for an inference-only model.
  TORCH_ARG(std::optional<AutoencoderGANLossOptions>,
            loss) = AutoencoderGANLossOptions().kind("vq");
};
void to_json(Json& json, const VQGANOptions& options);
void from_json(const Json& json, VQGANOptions& options);  // present keys only; unknown keys throw

// Presets: "imagenet_f16_1024" (taming's ImageNet VQGAN, 256 px -> 16x16 codes of K=1024) and
// "fashion32" (1x32x32 -> 8x8 codes of K=256, attention at 8 px: trains in minutes on a CPU).
VQGANOptions vqgan_preset(const std::string& name);
std::vector<std::string> vqgan_preset_names();

class VQGANImpl : public LdmAutoencoderImpl {
 public:
  explicit VQGANImpl(VQGANOptions options = {});

  std::string kind() const override { return "vqgan"; }
  TrainOutput train_step(const torch::Tensor& x) override;
  // x -> {"indices": [N, H/f, W/f] int64, "latents": z_q [N, embed_dim, H/f, W/f]}; the quantizer
  // runs in eval mode (no codebook updates).
  TensorMap encode(const torch::Tensor& x) override;
  // "indices" (looked up in the codebook) or "latents" (decoded as they are).
  torch::Tensor decode(const TensorMap& code) override;
  Json options_json() const override;

  const VQGANOptions& options() const { return options_; }

  VectorQuantizer quantize{nullptr};  // "quantize.embedding.weight"

 protected:
  // Measured on a trained Fashion-MNIST VQGAN: float16 storage of the streamed encoder's maps
  // changed codes, 58-62 dB for encode + decode against untiled (docs/results.md).
  bool encode_needs_float32_storage() const override { return true; }

 private:
  VQGANOptions options_;
};
TORCH_MODULE(VQGAN);

}  // namespace lf
