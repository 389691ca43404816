// VQ-VAE: conv encoder -> 1x1 conv to code_dim -> vector quantizer -> conv decoder. Loss =
// reconstruction + the quantizer's codebook and commitment terms; every step logs codebook health.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/ae.h"
#include "models/autoencoder.h"
#include "models/vector_quantizer.h"

namespace lf {

// JSON of the quantizer options (the nested "quantizer" object of VQ-VAE and VQGAN configs).
Json quantizer_options_to_json(const VectorQuantizerOptions& options);
void quantizer_options_from_json(const Json& json,
                                 VectorQuantizerOptions& options);  // present keys

struct VQVAEOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  // One stride-2 stage per entry.
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{64, 128};
  TORCH_ARG(int64_t, num_res_blocks) = 2;
  TORCH_ARG(std::string, activation) = "relu";         // "relu" | "silu"
  TORCH_ARG(std::string, loss) = "l2";                 // "l2" | "l1"
  TORCH_ARG(std::string, output_activation) = "none";  // "none" | "tanh" | "relu"
  // Restart a code once it gets under 3% of the average share (usage EMA over ~10 steps): on
  // Fashion-MNIST this keeps every code in use, where the quantizer's defaults (0.99, 1e-3) wait
  // ~700 steps and leave ~85% of the codes dead meanwhile.
  TORCH_ARG(VectorQuantizerOptions, quantizer) = VectorQuantizerOptions(256, 32)
                                                     .kmeans_init(true)
                                                     .dead_code_restart(true)
                                                     .usage_decay(0.9)
                                                     .dead_code_threshold(0.03);
  // Added to the initial codebook: codes far from every encoder output, so one code wins the
  // lookups and the others get no gradient (the collapse demonstration). 0 in normal use.
  TORCH_ARG(double, codebook_init_offset) = 0.0;
};
void to_json(Json& json, const VQVAEOptions& options);
void from_json(const Json& json, VQVAEOptions& options);  // present keys only; unknown keys throw

// Presets: "fashion" (1x28x28 -> 7x7 codes of K=256, D=32, k-means init, dead-code restart: all
// codes in use) and "fashion_collapse" (K=512 codes placed far from the encoder outputs, no repair:
// one code at first, a few percent after 150 steps).
VQVAEOptions vqvae_preset(const std::string& name);
std::vector<std::string> vqvae_preset_names();

class VQVAEImpl : public AutoencoderImpl {
 public:
  explicit VQVAEImpl(VQVAEOptions options = {});

  std::string kind() const override { return "vqvae"; }
  TrainOutput train_step(const torch::Tensor& x) override;
  // x: [N, C, H, W] -> {"indices": [N, H/f, W/f] int64, "latents": z_q [N, D, H/f, W/f]}.
  // The quantizer runs in eval mode here, so encoding never updates the codebook.
  TensorMap encode(const torch::Tensor& x) override;
  // "indices" (preferred) are looked up in the codebook; else "latents" are decoded as they are.
  torch::Tensor decode(const TensorMap& code) override;
  Json options_json() const override;

  int64_t factor() const { return int64_t{1} << options_.hidden().size(); }
  const VQVAEOptions& options() const { return options_; }

  ConvEncoder encoder{nullptr};       // ends in the 1x1 conv to code_dim
  VectorQuantizer quantize{nullptr};  // "quantize.embedding.weight": taming's key
  ConvDecoder decoder{nullptr};

 private:
  VQVAEOptions options_;
};
TORCH_MODULE(VQVAE);

}  // namespace lf
