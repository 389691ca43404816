// Batched matrix products for attention on the CPU through one oneDNN matmul: LibTorch 1.13's CPU
// bmm loops over the batch and calls OpenBLAS once per matrix, 3-4x slower at attention sizes
// ([32, 64, 64] x [32, 64, 64]: 198 vs 62 us; [32, 256, 64] x [32, 64, 256]: 2.7 vs 0.6 ms,
// bench/training_kernels_bench).
#pragma once

#include <torch/torch.h>

namespace lf {

// a [..., M, K] @ b [..., K, N] -> [..., M, N] with the same leading (batch) dims in both:
// torch::matmul's result (float rounding aside), differentiable in a and b (first order).
// float32 CPU tensors of any strides go through oneDNN where this build has it; anything else
// (CUDA, float64, broadcast batch dims, a build without oneDNN) through torch::matmul, whose
// errors name a shape mismatch.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lf
