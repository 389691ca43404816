// What VQGAN and the KL autoencoder share (taming's VQModel and ldm's AutoencoderKL): the ldm
// encoder and decoder, the 1x1 quant_conv / post_quant_conv around the latent, images of any size
// (reflect-padded to the factor), exact streamed or blended tiled encode and decode, and the
// adversarial training loss registered as "loss" like the originals.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "losses/autoencoder_gan_loss.h"
#include "models/autoencoder.h"
#include "models/ldm_coder.h"
#include "models/streaming_coder.h"
#include "models/tiling.h"

namespace lf {

// The "loss" entry of a VQGAN / KL config: an object of loss options merged into the current ones
// (defaults of `kind` when there are none yet), or null for an inference-only model.
Json optional_loss_to_json(const std::optional<AutoencoderGANLossOptions>& loss);
void optional_loss_from_json(const Json& json, const std::string& kind,
                             std::optional<AutoencoderGANLossOptions>& loss);

// How inference (no gradients) encode_moments / decode_latents bound their memory; blended tiles,
// when set, take precedence.
struct MemoryPlan {
  TORCH_ARG(bool, stream) = false;    // always stream (exact)
  TORCH_ARG(int64_t, max_bytes) = 0;  // > 0: stream when the untiled activations would exceed it
  // Band size and storage of streaming; with max_bytes, band_bytes is capped at max_bytes / 16
  // and float16 storage is chosen when float32 storage would exceed max_bytes.
  TORCH_ARG(StreamingOptions, streaming) = StreamingOptions();
};

// x: [N, C, H, W] -> [N, C, H', W'] with H', W' the next multiples of f: reflected at the bottom
// and right edges (replicated where a side is shorter than its padding).
torch::Tensor pad_to_factor(const torch::Tensor& x, int64_t f);

class LdmAutoencoderImpl : public AutoencoderImpl {
 public:
  // moment_channels: quant_conv's output (VQ: embed_dim; KL: 2 * embed_dim); latent_channels:
  // post_quant_conv's input (embed_dim). loss: none for an inference-only model.
  LdmAutoencoderImpl(const LdmCoderOptions& ddconfig, int64_t moment_channels,
                     int64_t latent_channels, const std::optional<AutoencoderGANLossOptions>& loss);

  // x: [N, in_channels, H, W] in [-1, 1] -> quant_conv(encoder(x)) [N, moment_channels, ceil(H/f),
  // ceil(W/f)] (sides padded by pad_to_factor); tiled or streamed as set.
  torch::Tensor encode_moments(const torch::Tensor& x);
  // z: [N, latent_channels, h, w] -> decoder(post_quant_conv(z)) [N, out_ch, h*f, w*f]; tiled or
  // streamed as set.
  torch::Tensor decode_latents(const torch::Tensor& z);
  // decode(encode(x)) cropped back to x's size.
  torch::Tensor reconstruct(const torch::Tensor& x) override;
  // Tile sizes in image pixels for both directions (encode: multiples of f).
  void set_tiling(const TileOptions& options);
  const TileOptions& tiling() const { return tiling_; }
  void set_memory_plan(const MemoryPlan& plan);
  const MemoryPlan& memory_plan() const { return plan_; }
  // One line per call that streamed because of max_bytes ("decode: streamed ..."); then cleared.
  std::vector<std::string> take_plan_notes();

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
  // Training images must be whole multiples of the factor (the loss compares same-size images).
  void check_training_image(const torch::Tensor& x);
  // Whether streamed encoding must keep its maps in float32 (VQGAN: its codes are an argmin over
  // the encoder's output, and float16 storage of the maps before it flips near-tie codes).
  virtual bool encode_needs_float32_storage() const { return false; }

  int64_t step_ = 0;

 private:
  // Streaming options for one call, or none to run whole; `estimate` gives the memory estimate;
  // float32_only: never float16 storage (a plan asking for it is overridden, with a note).
  std::optional<StreamingOptions> choose_streaming(
      const char* what, const std::function<CoderMemory(const StreamingOptions&)>& estimate,
      bool float32_only = false);

  LdmCoderOptions ddconfig_;
  TileOptions tiling_;
  MemoryPlan plan_;
  std::vector<std::string> plan_notes_;
};

}  // namespace lf
