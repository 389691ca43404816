// A stride-2 transposed convolution (ConvTranspose2d) computed as one ordinary convolution over the
// low-resolution input with four output phases, then interleaved: output pixel (2m + a, 2n + b)
// only ever receives the kernel taps of parity (a + padding, b + padding), so each phase is a small
// convolution of the input (2x2 for the 4x4 and 3x3 kernels of our decoders). The same sums, in
// another order: exact up to float rounding, for the forward pass and both gradients.
//
// Why: LibTorch 1.13 runs a CPU ConvTranspose2d as im2col + OpenBLAS GEMMs (slow_conv_transpose2d)
// while ordinary convolutions go to oneDNN; and every OpenBLAS call wakes Debian's OpenBLAS thread
// pool, whose threads then spin in sched_yield beside OpenMP's (a third of the CPU time of the
// conv autoencoders' training steps). Folded, the conv runs in oneDNN: 1.6-15x faster forward +
// backward at the Fashion-MNIST decoders' sizes (docs/results.md). The checkpoint keeps the
// ConvTranspose2d weight [I, O, k, k]; the folded kernels are derived from it in every call, so
// gradients flow to it.
#pragma once

#include <torch/torch.h>

namespace lf {

// weight [I, O, k, k] of a stride-2 transposed conv with this padding -> [4 * O, I, T, T]: the
// kernels of output phases (a, b) = (0,0), (0,1), (1,0), (1,1) in that order, T the longest run of
// taps one phase uses (zeros where a phase has fewer).
torch::Tensor conv_transpose2x_folded_weight(const torch::Tensor& weight, int64_t padding);

// conv_transpose2d(x, weight, bias, stride 2, padding, output_padding), groups 1, dilation 1.
// x: [N, I, H, W] -> [N, O, 2(H-1) - 2 padding + k + output_padding, likewise for W]
torch::Tensor conv_transpose2x_folded(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, int64_t padding,
                                      int64_t output_padding);

// module(x): the folded form where it pays (CPU, stride 2, square kernel, groups and dilation 1),
// the module's own forward elsewhere (CUDA has cuDNN's transposed convolution).
torch::Tensor conv_transpose_forward(torch::nn::ConvTranspose2dImpl& module,
                                     const torch::Tensor& x);

}  // namespace lf
