// How the 3x3 convolutions of the ldm/taming blocks run on the CPU: LibTorch's direct convolution,
// or (inference on CPUs with avx512_core, layers above a measured size) oneDNN's Winograd
// F(4x4, 3x3) with weights transformed once. A process-wide choice, like the thread count.
#pragma once

#include <torch/torch.h>

#include <string>

namespace lf {

enum class ConvAlgorithm {
  kAuto,    // Winograd where it is available and faster, LibTorch's convolution elsewhere
  kDirect,  // LibTorch's convolution everywhere
};

// "auto" | "direct"; throws on anything else.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
void set_conv_algorithm(ConvAlgorithm algorithm);
ConvAlgorithm conv_algorithm();

// One line for `latentforge info`: the choice and why, e.g.
// "auto: oneDNN 2.6.3 Winograd F(4x4,3x3) for 3x3 inference convs with H*W >= 4096".
std::string conv_algorithm_summary();

// True when large float32 CPU inference convs go through Winograd (the choice is auto and this
// CPU has oneDNN's Winograd).
bool winograd_active();

// True when x would go through Winograd in conv_forward (exposed for tests and benchmarks).
bool uses_winograd(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x);

// conv(x), through Winograd when uses_winograd(conv, x), else conv.forward(x).
// x: [N, in, H, W] -> [N, out, H', W']
torch::Tensor conv_forward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x);

// Frees what conv_forward keeps for this conv between calls (Winograd's transformed weight, 4x the
// weight's size); a bounded-memory computation calls it once it is done with a layer.
void release_conv_cache(torch::nn::Conv2dImpl& conv);

}  // namespace lf
