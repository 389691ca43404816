// VAE: an encoder with mean and log-variance heads, the reparameterisation z = mean +
// exp(logvar/2) * eps, a decoder, and loss = reconstruction + kl_weight * KL. Two variants:
// "conv" (the seed's face VAE: flattened bottleneck, latent vector) and "spatial" (AE-style
// encoder/decoder, latent feature map).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/ae.h"
#include "models/autoencoder.h"

namespace lf {

// KL(N(mean, exp(logvar)) || N(0, I)): mean over the batch (dim 0) of
// -0.5 * sum(1 + logvar - mean^2 - exp(logvar)) over all other dims. mean, logvar: [N, ...] -> []
torch::Tensor kl_divergence(const torch::Tensor& mean, const torch::Tensor& logvar);

struct VAEOptions {
  TORCH_ARG(std::string,
            variant) = "conv";  // "conv" (seed, latent vector) | "spatial" (latent map)
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, image_size) = 64;  // conv: the only input size (fixes the flattened size);
                                        // spatial: the size sample() draws
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{16, 32, 64, 128, 256};
  TORCH_ARG(int64_t, latent_dim) = 128;     // conv: length of the latent vector
  TORCH_ARG(int64_t, latent_channels) = 4;  // spatial: channels of the latent map
  TORCH_ARG(int64_t, num_res_blocks) = 1;   // spatial: residual blocks at the bottom
  TORCH_ARG(std::string,
            activation) = "relu";  // spatial: "relu" | "silu" (conv is the seed's ReLU)
  TORCH_ARG(double, kl_weight) = 0.00025;
  TORCH_ARG(std::string, loss) = "l2";                 // "l2" (the seed's F.mse_loss) | "l1"
  TORCH_ARG(std::string, output_activation) = "none";  // "none" | "relu" (the seed's) | "tanh"
};
void to_json(Json& json, const VAEOptions& options);
void from_json(const Json& json, VAEOptions& options);  // present keys only; unknown keys throw

// Presets: "face64" (the seed's face VAE, 3x64x64, latent 128), "fashion" (1x28x28, latent 16).
VAEOptions vae_preset(const std::string& name);
std::vector<std::string> vae_preset_names();

// The seed's decoder stage: ConvTranspose2d (3x3, stride 2, output_padding 1) "0", BatchNorm2d "1",
// ReLU; the last stage adds Conv2d "3" (3x3) to the image channels. x: [N, in, h, w] -> [N, out,
// 2h, 2w]
class SeedUpBlockImpl : public torch::nn::Module {
 public:
  SeedUpBlockImpl(int64_t in_channels, int64_t out_channels,
                  int64_t image_channels);  // 0: not last
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ConvTranspose2d up{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
  torch::nn::Conv2d conv_out{nullptr};  // last stage only
};
TORCH_MODULE(SeedUpBlock);

class VAEImpl : public AutoencoderImpl {
 public:
  explicit VAEImpl(VAEOptions options = {});

  std::string kind() const override { return "vae"; }
  TrainOutput train_step(const torch::Tensor& x) override;
  // x: [N, C, H, W] -> {"mean", "logvar", "latents" = mean}: [N, latent_dim] or [N, z, H/f, W/f]
  TensorMap encode(const torch::Tensor& x) override;
  torch::Tensor decode(const TensorMap& code) override;  // "latents" or "mean" -> [N, C, H, W]
  torch::Tensor sample(int64_t n) override;              // decodes z ~ N(0, I) -> [n, C, S, S]
  Json options_json() const override;

  // Decodes the linear interpolation of the means of x_a and x_b ([1, C, H, W] each).
  // -> [steps, C, H, W], first x_a's reconstruction, last x_b's. No gradients; runs in the
  // current mode, like sample() (call eval() to use BatchNorm's running statistics).
  torch::Tensor interpolate(const torch::Tensor& x_a, const torch::Tensor& x_b, int64_t steps);

  std::vector<int64_t> latent_shape() const;  // without the batch dim: {D} or {z, S/f, S/f}
  int64_t factor() const { return int64_t{1} << options_.hidden().size(); }
  const VAEOptions& options() const { return options_; }

  // "conv": names of the seed's PyTorch module, so its state dict loads by key.
  torch::nn::ModuleList encoder{
      nullptr};  // "encoder.i": Sequential(Conv2d "0", BatchNorm2d "1", ReLU)
  torch::nn::Linear mean_linear{nullptr}, var_linear{nullptr}, decoder_projection{nullptr};
  torch::nn::ModuleList decoder{nullptr};  // "decoder.i": SeedUpBlock
  // "spatial": registered as "encoder" / "decoder" too.
  ConvEncoder spatial_encoder{nullptr};  // -> 2 * latent_channels (mean, logvar)
  ConvDecoder spatial_decoder{nullptr};

 private:
  bool spatial() const { return options_.variant() == "spatial"; }
  std::pair<torch::Tensor, torch::Tensor> encode_stats(const torch::Tensor& x, const char* where);
  torch::Tensor decode_latents(const torch::Tensor& z);

  VAEOptions options_;
  std::vector<torch::nn::Sequential> encoder_blocks_;
  std::vector<SeedUpBlock> decoder_blocks_;
};
TORCH_MODULE(VAE);

}  // namespace lf
