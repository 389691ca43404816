// Batched matrix products for attention on the CPU through one oneDNN matmul: LibTorch 1.13's CPU
// bmm loops over the batch and calls OpenBLAS once per matrix, 3-6x slower at attention sizes
// (forward + backward, [32, 64, 64] x [32, 64, 64]: 0.71 vs 0.22 ms; [32, 256, 64] x
// [32, 64, 256]: 8.2 vs 2.7 ms; bench/training_kernels_bench).
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
