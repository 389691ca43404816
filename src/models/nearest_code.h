// Nearest-code search of the vector quantizers: argmin_k ||x_m - e_k||^2 for every row of x, as
// blocked GEMMs (||e||^2 - 2 x e^T) whose blocks stay in cache and are scanned at once into a
// running minimum: memory O(M + K) beyond x and the codebook, never an [M, K] matrix.
#pragma once

#include <torch/torch.h>

namespace lf {

// x: [M, D], codes: [K, D] (same dtype and device) -> [M] int64 index of the nearest code; ties go
// to the lowest index. rows_per_block > 0 sets the rows of x per GEMM block (0: automatic).
torch::Tensor nearest_code(const torch::Tensor& x, const torch::Tensor& codes,
                           int64_t rows_per_block = 0);

// The block of distances nearest_code holds at a time for x [M, D] and num_codes codes: rows x
// codes values of x's dtype, `copies` of them (one per thread where the threads search blocks in
// parallel). Its memory beyond the inputs, the output and two [K] vectors.
struct NearestCodeBlock {
  int64_t rows = 0, codes = 0, copies = 1;
};
NearestCodeBlock nearest_code_block(const torch::Tensor& x, int64_t num_codes,
                                    int64_t rows_per_block = 0);

}  // namespace lf
