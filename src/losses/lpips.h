// LPIPS perceptual distance with VGG16 (taming/modules/losses/lpips.py): scaled inputs, VGG16
// features relu1_2..relu5_3 normalised over channels, squared differences weighted per channel by
// 1x1 convs, averaged over space and summed over the 5 layers. Frozen; gradients reach the inputs.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lf {

class LPIPSImpl : public torch::nn::Module {
 public:
  // Unloaded (LibTorch's default init): only for building a weight file. Frozen and in eval mode.
  LPIPSImpl();
  // Loads weights as load_weights does.
  explicit LPIPSImpl(const std::string& weights_path);

  // Reads a .safetensors file holding, under any prefix P found for P + "net.slice1.0.weight"
  // (e.g. "" or taming's "loss.perceptual_loss."), taming's keys net.slice{1..5}.<i>.{weight,bias}
  // and lin{0..4}.model.1.weight; or torchvision's features.<i>.{weight,bias} with the lin keys.
  // scaling_layer.{shift,scale} are optional (the constants are the default). A missing or
  // wrong-shaped tensor throws lf::Error naming the file and the key.
  void load_weights(const std::string& path);

  // x, y: [N, 3, H, W] in [-1, 1] -> distance [N]. H, W >= 16 (four 2x2 max pools).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);

  // Registered names equal taming's keys: scaling_layer.{shift,scale} [1, 3, 1, 1],
  // net.slice<s>.<i> (torchvision feature index i), lin<k>.model.1.
  static constexpr int kLayers = 5;

 private:
  std::vector<std::vector<torch::nn::Conv2d>> slices_;  // convs of net.slice1..5 (ReLU after each)
  std::vector<torch::nn::Conv2d> lins_;                 // [1, C_k, 1, 1] no bias
  torch::Tensor shift_, scale_;                         // [1, 3, 1, 1] buffers of scaling_layer
};
TORCH_MODULE(LPIPS);

}  // namespace lf
