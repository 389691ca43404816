// The gated PixelCNN prior (van den Oord et al. 2016) over code-index maps: a code embedding, a
// stack of gated layers with a vertical and a horizontal stack (no blind spot), optional class
// conditioning, and a 1x1 head to K logits per cell. Convolutional: any grid can be sampled.
#pragma once

#include <torch/torch.h>

#include <string>
#include <tuple>
#include <vector>

#include "priors/prior.h"

namespace lf {

struct PixelCNNOptions {
  TORCH_ARG(int64_t, num_codes) = 256;  // K, the first stage's codebook size
  TORCH_ARG(std::vector<int64_t>, grid) = std::vector<int64_t>{7, 7};  // training code grid [h, w]
  TORCH_ARG(int64_t, hidden) = 128;       // channels of both stacks (and of the code embedding)
  TORCH_ARG(int64_t, num_layers) = 12;    // gated layers; the first is type A
  TORCH_ARG(int64_t, kernel_size) = 7;    // odd >= 3; each layer reaches kernel_size / 2 cells
  TORCH_ARG(int64_t, num_classes) = 0;    // > 0: a per-layer class embedding (class-conditional)
  TORCH_ARG(int64_t, head_hidden) = 512;  // channels of the 1x1 output head
  TORCH_ARG(double, dropout) = 0.0;       // on each layer's gated horizontal features
};
void to_json(Json& json, const PixelCNNOptions& options);
void from_json(const Json& json, PixelCNNOptions& options);  // present keys only; unknown throw

// Presets: "fashion" (7x7 codes of K=256: 64 channels, 12 layers, 5x5 kernels, a 512-wide head,
// 2.2 M parameters; the receptive field covers the 7x7 grid from the 3rd layer on).
PixelCNNOptions pixelcnn_preset(const std::string& name);
std::vector<std::string> pixelcnn_preset_names();

// One gated layer. The vertical stack at row i sees rows <= i (within reach); the horizontal stack
// at (i, j) sees columns <= j of row i (< j for type A) and, through vert_to_horiz, the vertical
// features shifted one row down (rows < i). Names as in the common VQ-VAE prior implementation
// (ritheshkumar95/pytorch-vqvae); its type A masks the vertical kernel's last row instead of
// shifting, so its weights have the same shapes here but not the same meaning.
class GatedMaskedConvImpl : public torch::nn::Module {
 public:
  GatedMaskedConvImpl(int64_t hidden, int64_t kernel_size, bool type_a, int64_t num_classes,
                      double dropout);
  // x_v, x_h: [N, C, h, w]; labels: [N] int64 (class-conditional) or undefined
  // -> (vertical, horizontal) [N, C, h, w] each.
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x_v,
                                                   const torch::Tensor& x_h,
                                                   const torch::Tensor& labels);

  torch::nn::Conv2d vert_stack{nullptr};               // C -> 2C, kernel (k/2 + 1, k)
  torch::nn::Conv2d vert_to_horiz{nullptr};            // 2C -> 2C, 1x1
  torch::nn::Conv2d horiz_stack{nullptr};              // C -> 2C, kernel (1, k/2 + 1)
  torch::nn::Conv2d horiz_resid{nullptr};              // C -> C, 1x1 ("h_out")
  torch::nn::Embedding class_cond_embedding{nullptr};  // classes -> 2C (class-conditional only)

 private:
  int64_t half_;  // k / 2
  bool type_a_;
  double dropout_;
};
TORCH_MODULE(GatedMaskedConv);

class PixelCNNImpl : public PriorImpl {
 public:
  explicit PixelCNNImpl(PixelCNNOptions options = {});

  std::string kind() const override { return "pixelcnn"; }
  Json options_json() const override;
  int64_t num_codes() const override { return options_.num_codes(); }
  int64_t num_classes() const override { return options_.num_classes(); }
  std::vector<int64_t> grid() const override { return options_.grid(); }
  const PixelCNNOptions& options() const { return options_; }

  // codes: [N, h, w] int64 (unchecked), labels: [N] int64 or undefined -> logits [N, K, h, w].
  torch::Tensor forward(const torch::Tensor& codes, const torch::Tensor& labels);

  torch::Tensor logits(const torch::Tensor& codes, const PriorCondition& cond) override;
  // Any h, w >= 1. Each step runs the rows up to the current one (the logits of row i do not
  // depend on the rows below it).
  torch::Tensor sample(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                       const SamplingOptions& options, at::Generator& generator) override;

  torch::nn::Embedding embedding{nullptr};     // K -> C
  torch::nn::ModuleList layers{nullptr};       // GatedMaskedConv
  torch::nn::Sequential output_conv{nullptr};  // 1x1 C -> head_hidden, ReLU, 1x1 -> K

 private:
  PixelCNNOptions options_;
};
TORCH_MODULE(PixelCNN);

}  // namespace lf
