// AE: a conv encoder to a feature map and a mirrored transposed-conv decoder, with L1 or L2
// reconstruction loss. Also the conv building blocks and helpers that VAE and VQ-VAE share.
#pragma once

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "io/option_reader.h"
#include "models/autoencoder.h"

namespace lf {

// ---- Shared building blocks ---------------------------------------------------------------------

// VQ-VAE paper's residual block: x + conv1x1(act(conv3x3(act(x)))). x: [N, C, H, W] -> same.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t channels, bool silu);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};

 private:
  bool silu_;
};
TORCH_MODULE(ResidualBlock);

// Stride-2 4x4 convs through `hidden`, residual blocks, then a 1x1 conv to out_channels.
// x: [N, in, H, W] -> [N, out, H/f, W/f], f = 2^hidden.size()
class ConvEncoderImpl : public torch::nn::Module {
 public:
  ConvEncoderImpl(int64_t in_channels, const std::vector<int64_t>& hidden, int64_t num_res_blocks,
                  int64_t out_channels, bool silu);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList down{nullptr}, res{nullptr};  // "down.i": Conv2d, "res.i": ResidualBlock
  torch::nn::Conv2d conv_out{nullptr};

 private:
  std::vector<torch::nn::Conv2d> down_convs_;
  std::vector<ResidualBlock> res_blocks_;
  bool silu_;
};
TORCH_MODULE(ConvEncoder);

// Mirror of ConvEncoder: 3x3 conv in, residual blocks, stride-2 4x4 transposed convs back through
// `hidden` (given in encoder order), 3x3 conv to out_channels. z: [N, in, h, w] -> [N, out, h*f,
// w*f]
class ConvDecoderImpl : public torch::nn::Module {
 public:
  ConvDecoderImpl(int64_t in_channels, const std::vector<int64_t>& hidden, int64_t num_res_blocks,
                  int64_t out_channels, bool silu);
  torch::Tensor forward(torch::Tensor z);

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList res{nullptr},
      up{nullptr};  // "res.i": ResidualBlock, "up.i": ConvTranspose2d

 private:
  std::vector<ResidualBlock> res_blocks_;
  std::vector<torch::nn::ConvTranspose2d> up_convs_;  // called directly: they do not fit Sequential
  bool silu_;
};
TORCH_MODULE(ConvDecoder);

// ---- Shared helpers -----------------------------------------------------------------------------

// x: [N, channels, H, W] with H, W > 0 and divisible by `factor`; throws "[where] expected ...".
void check_image(const torch::Tensor& x, int64_t channels, int64_t factor, const char* where);
// Mean L2 (MSE) or L1 loss; loss is "l2" or "l1".
torch::Tensor reconstruction_loss(const torch::Tensor& x_rec, const torch::Tensor& x,
                                  const std::string& loss);
// name: "none" | "relu" | "tanh"
torch::Tensor output_activation(const torch::Tensor& x, const std::string& name);
void check_hidden(const std::vector<int64_t>& hidden, const char* where);

// ---- AE -----------------------------------------------------------------------------------------

struct AEOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  // One stride-2 stage per entry: latents are H/f x W/f, f = 2^hidden.size().
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{32, 64};
  TORCH_ARG(int64_t, num_res_blocks) = 2;   // residual blocks at the bottom of encoder and decoder
  TORCH_ARG(int64_t, latent_channels) = 4;  // channels of the latent feature map
  TORCH_ARG(std::string, loss) = "l2";      // "l2" | "l1"
  TORCH_ARG(std::string, activation) = "relu";  // "relu" | "silu"
  // "none" | "tanh" | "relu"; data is in [-1, 1], so "none" (or "tanh") fits.
  TORCH_ARG(std::string, output_activation) = "none";
};
void to_json(Json& json, const AEOptions& options);
void from_json(const Json& json, AEOptions& options);  // present keys only; unknown keys throw

// Presets: "fashion" (1x28x28 -> 4x7x7), "face64" (3x64x64 -> 8x8x8).
AEOptions ae_preset(const std::string& name);
std::vector<std::string> ae_preset_names();

class AEImpl : public AutoencoderImpl {
 public:
  explicit AEImpl(AEOptions options = {});

  std::string kind() const override { return "ae"; }
  TrainOutput train_step(const torch::Tensor& x) override;
  TensorMap encode(const torch::Tensor& x) override;     // {"latents": [N, latent, H/f, W/f]}
  torch::Tensor decode(const TensorMap& code) override;  // "latents" -> [N, C, H, W]
  Json options_json() const override;

  int64_t factor() const { return int64_t{1} << options_.hidden().size(); }
  const AEOptions& options() const { return options_; }

  ConvEncoder encoder{nullptr};
  ConvDecoder decoder{nullptr};

 private:
  AEOptions options_;
};
TORCH_MODULE(AE);

}  // namespace lf
