// LPIPS (VGG16) forward pass and weight loading from taming's or torchvision's key layouts.
#include "losses/lpips.h"

#include <functional>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/state_dict.h"

namespace lf {

namespace {

// torchvision's vgg16().features: conv indices per LPIPS slice (each conv is followed by a ReLU;
// slices 2..5 open with a 2x2 max pool at index first conv - 1).
const std::vector<std::vector<int>> kSliceConvs = {
    {0, 2}, {5, 7}, {10, 12, 14}, {17, 19, 21}, {24, 26, 28}};
const std::vector<int64_t> kSliceChannels = {64, 128, 256, 512, 512};

// x: [N, C, H, W] -> x / (||x||_C + 1e-10)
torch::Tensor normalize_channels(const torch::Tensor& x) {
  return x / (x.pow(2).sum(1, /*keepdim=*/true).sqrt() + 1e-10);
}

}  // namespace

LPIPSImpl::LPIPSImpl() {
  namespace nn = torch::nn;
  auto scaling = std::make_shared<nn::Module>();
  shift_ =
      scaling->register_buffer("shift", torch::tensor({-.030f, -.088f, -.188f}).view({1, 3, 1, 1}));
  scale_ =
      scaling->register_buffer("scale", torch::tensor({.458f, .448f, .450f}).view({1, 3, 1, 1}));
  register_module("scaling_layer", scaling);

  auto net = std::make_shared<nn::Module>();
  int64_t channels = 3;
  for (size_t s = 0; s < kSliceConvs.size(); ++s) {
    auto slice = std::make_shared<nn::Module>();
    slices_.emplace_back();
    for (int index : kSliceConvs[s]) {
      auto conv = nn::Conv2d(nn::Conv2dOptions(channels, kSliceChannels[s], 3).padding(1));
      slice->register_module(std::to_string(index), conv);
      slices_.back().push_back(conv);
      channels = kSliceChannels[s];
    }
    net->register_module("slice" + std::to_string(s + 1), slice);
  }
  register_module("net", net);

  for (int k = 0; k < kLayers; ++k) {
    auto conv = nn::Conv2d(nn::Conv2dOptions(kSliceChannels[k], 1, 1).bias(false));
    auto model = std::make_shared<nn::Module>();
    model->register_module("1", conv);  // "0" is taming's Dropout (no weights, off in eval)
    auto lin = std::make_shared<nn::Module>();
    lin->register_module("model", model);
    register_module("lin" + std::to_string(k), lin);
    lins_.push_back(conv);
  }
  for (auto& p : parameters()) p.requires_grad_(false);
  eval();
}

LPIPSImpl::LPIPSImpl(const std::string& weights_path) : LPIPSImpl() {
  load_weights(weights_path);
}

void LPIPSImpl::load_weights(const std::string& path) {
  const SafetensorsReader reader(path);
  // Where our key (taming's layout without prefix) is stored in the file.
  std::function<std::string(const std::string&)> source;
  std::string prefix;
  bool found = false;
  const std::string anchor = "net.slice1.0.weight";
  for (const auto& key : reader.keys()) {
    if (key.size() < anchor.size() ||
        key.compare(key.size() - anchor.size(), anchor.size(), anchor))
      continue;
    const std::string p = key.substr(0, key.size() - anchor.size());
    if (!p.empty() && p.back() != '.') continue;
    if (found)
      fail("lpips", "{}: LPIPS weights found under two prefixes, '{}' and '{}'", path, prefix, p);
    prefix = p;
    found = true;
  }
  if (found) {
    source = [&](const std::string& key) { return prefix + key; };
  } else if (reader.contains("features.0.weight")) {
    source = [](const std::string& key) {  // net.slice3.10.weight -> features.10.weight
      if (key.rfind("net.slice", 0) != 0) return key;
      return "features" + key.substr(key.find('.', 4));
    };
  } else {
    fail("lpips",
         "{}: no LPIPS weights: expected '{}' (under any prefix, e.g. 'loss.perceptual_loss.') or "
         "torchvision's 'features.0.weight'",
         path, anchor);
  }

  TensorMap state;
  for (const auto& [key, target] : module_state(*this)) {
    const std::string name = source(key);
    if (!reader.contains(name)) {
      if (key.rfind("scaling_layer.", 0) == 0) continue;  // optional: the constants above
      fail("lpips", "{}: missing key '{}' (expected shape {})", path, name,
           shape_str(target.sizes()));
    }
    const auto& shape = reader.info(name).shape;
    if (torch::IntArrayRef(shape) != target.sizes())
      fail("lpips", "{}: '{}' has shape {}, expected {}", path, name, shape_str(shape),
           shape_str(target.sizes()));
    state[key] = reader.get(name);
  }
  load_module_state(*this, state, /*strict=*/false, path);
}

torch::Tensor LPIPSImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 4 || x.size(1) != 3 || x.sizes() != y.sizes() || x.size(2) < 16 || x.size(3) < 16)
    fail("lpips", "expected two [N, 3, H, W] inputs of the same shape, H, W >= 16, got {} and {}",
         shape_str(x.sizes()), shape_str(y.sizes()));
  const int64_t n = x.size(0);
  // Both images in one batch through VGG: [2N, 3, H, W].
  auto h = (torch::cat({x, y}) - shift_) / scale_;
  torch::Tensor total;
  for (size_t s = 0; s < slices_.size(); ++s) {
    if (s > 0) h = torch::max_pool2d(h, 2, 2);
    for (auto& conv : slices_[s]) h = torch::relu(conv->forward(h));
    const auto f = normalize_channels(h);  // [2N, C_s, H_s, W_s]
    const auto diff = (f.slice(0, 0, n) - f.slice(0, n)).pow(2);
    const auto layer = lins_[s]->forward(diff).mean({2, 3}).view({n});  // [N]
    total = total.defined() ? total + layer : layer;
  }
  return total;
}

}  // namespace lf
