// Backend of conv_algorithm.cpp: a 3x3, stride 1, padding 1 float32 CPU convolution through
// oneDNN's Winograd (winograd_conv_onednn.cpp), or a stub when built without oneDNN
// (winograd_conv_none.cpp; CMake option LF_ONEDNN_WINOGRAD picks the file).
#pragma once

#include <torch/torch.h>

#include <string>

namespace lf::winograd {

// oneDNN has a Winograd implementation for this CPU (its effective ISA, which honours
// ONEDNN_MAX_CPU_ISA). Probed once.
bool available();
// "oneDNN 2.6.3, avx512_core" or why it is unavailable.
std::string describe();
// x: [N, C, H, W] float32 contiguous CPU; weight [O, C, 3, 3]; bias [O] or undefined.
// -> [N, O, H, W]. The transformed weight is cached until weight changes (version, storage).
torch::Tensor conv3x3(const torch::Tensor& x, const torch::Tensor& weight,
                      const torch::Tensor& bias);
// oneDNN has Winograd training kernels (forward, backward data, backward weights) for this shape
// (its kernels need channel counts that fit their blocking). Probed once per shape.
bool trainable(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w);
// The same convolution for training: an autograd function whose backward computes the gradients
// of x, weight and bias with oneDNN's Winograd backward-data and backward-weights kernels (first
// order only: no double backward). Nothing is cached: a trained weight changes every step.
torch::Tensor conv3x3_trainable(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias);
// Drops the cached transform of `weight` (4x the weight's size: 6x6 tiles for 3x3 taps); the next
// conv3x3 with it transforms again. For computations that bound their memory.
void release_transformed(const torch::Tensor& weight);

}  // namespace lf::winograd
