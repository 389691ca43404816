// The process-wide convolution choice and the dispatch of conv_forward: see conv_algorithm.h.
#include "models/conv_algorithm.h"

#include <atomic>

#include "core/error.h"
#include "core/torch_compat.h"
#include "models/winograd_conv.h"

namespace lf {
namespace {

std::atomic<ConvAlgorithm> algorithm{ConvAlgorithm::kAuto};

// Below this many output pixels per channel Winograd's transforms and layout reorders cost more
// than they save (bench/conv_bench: 0.3x at 16x16, break-even near 32x32, 1.5-2.2x from 64x64 on
// at 128-512 channels); few channels leave too little GEMM work to amortise them.
constexpr int64_t kMinPixels = 64 * 64;
constexpr int64_t kMinChannels = 64;
// Training (forward, backward data and backward weights, layout reorders included) measured at
// batch 32, 8x8 to 32x32, 32-128 channels (bench/training_kernels_bench): break-even at 32
// channels (0.98-1.12x), 1.3-1.6x from 64 channels. Winograd's tiles come from the whole batch,
// so the threshold counts N*H*W.
constexpr int64_t kMinTrainingPixels = 2048;
constexpr int64_t kMinTrainingChannels = 32;

bool records_gradients(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  return torch::GradMode::is_enabled() && (x.requires_grad() || conv.weight.requires_grad());
}

// padding (1, 1) with zeros. LibTorch's option variants are c10::variant before 2.1.
bool zero_padding_one(const torch::nn::detail::ConvNdOptions<2>& o) {
#if LF_TORCH_AT_LEAST(2, 1)
  namespace v = std;
#else
  namespace v = c10;
#endif
  const auto* pad = v::get_if<torch::ExpandingArray<2>>(&o.padding());
  return pad && (*pad)->at(0) == 1 && (*pad)->at(1) == 1 &&
         v::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
}

}  // namespace

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  if (name == "auto") return ConvAlgorithm::kAuto;
  if (name == "direct") return ConvAlgorithm::kDirect;
  fail("conv", "'{}': expected auto or direct", name);
}

void set_conv_algorithm(ConvAlgorithm value) {
  algorithm = value;
}

ConvAlgorithm conv_algorithm() {
  return algorithm;
}

std::string conv_algorithm_summary() {
  if (conv_algorithm() == ConvAlgorithm::kDirect) return "direct (LibTorch's convolution)";
  if (!winograd::available())
    return "auto: direct (LibTorch's convolution); Winograd off: " + winograd::describe();
  return "auto: Winograd F(4x4,3x3) (" + winograd::describe() +
         ") for 3x3 stride-1 convs: inference with >= " + std::to_string(kMinChannels) +
         " channels and H*W >= " + std::to_string(kMinPixels) +
         ", training with >= " + std::to_string(kMinTrainingChannels) +
         " channels and N*H*W >= " + std::to_string(kMinTrainingPixels) + "; direct elsewhere";
}

bool winograd_active() {
  return conv_algorithm() == ConvAlgorithm::kAuto && winograd::available();
}

bool uses_winograd(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  if (conv_algorithm() != ConvAlgorithm::kAuto) return false;
  const auto& o = conv.options;
  const auto &k = *o.kernel_size(), &s = *o.stride(), &d = *o.dilation();
  if (k[0] != 3 || k[1] != 3 || s[0] != 1 || s[1] != 1 || d[0] != 1 || d[1] != 1 ||
      o.groups() != 1 || !zero_padding_one(o))
    return false;
  if (x.dim() != 4 || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 ||
      conv.weight.scalar_type() != torch::kFloat32 || !conv.weight.device().is_cpu())
    return false;
  const int64_t channels = std::min(o.in_channels(), o.out_channels());
  if (records_gradients(conv, x))
    return x.size(0) * x.size(2) * x.size(3) >= kMinTrainingPixels &&
           channels >= kMinTrainingChannels &&
           winograd::trainable(x.size(0), o.in_channels(), o.out_channels(), x.size(2), x.size(3));
  if (x.size(2) * x.size(3) < kMinPixels || channels < kMinChannels) return false;
  return winograd::available();
}

torch::Tensor conv_forward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  if (!uses_winograd(conv, x)) return conv.forward(x);
  if (records_gradients(conv, x)) return winograd::conv3x3_trainable(x, conv.weight, conv.bias);
  return winograd::conv3x3(x, conv.weight, conv.bias);
}

void release_conv_cache(torch::nn::Conv2dImpl& conv) {
  winograd::release_transformed(conv.weight);
}

}  // namespace lf
