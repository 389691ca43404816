// Blocked nearest-code search: see nearest_code.h.
#include "models/nearest_code.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace lf {
namespace {

// A block of rows x codes is 256 x 2048 float32 = 2 MB: written by the GEMM and read back by the
// scan while it is still in cache (a whole [rows, K] block at K = 16384 is not).
constexpr int64_t kRowsPerBlock = 256;
constexpr int64_t kCodesPerBlock = 2048;
constexpr int kLanes = 16;  // independent running minima, so the compiler can vectorise the scan

// For one row of a block: the first j minimising sq[j] + dot[j] (dot = -2 x.e), j < n.
template <typename T>
void scan_row(const T* dot, const T* sq, int64_t n, T& best, int32_t& best_j) {
  T lane_value[kLanes];
  int32_t lane_index[kLanes];
  std::fill(lane_value, lane_value + kLanes, std::numeric_limits<T>::infinity());
  std::fill(lane_index, lane_index + kLanes, 0);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T v = sq[j + l] + dot[j + l];
      const bool less = v < lane_value[l];
      lane_value[l] = less ? v : lane_value[l];
      lane_index[l] = less ? static_cast<int32_t>(j + l) : lane_index[l];
    }
  best = std::numeric_limits<T>::infinity();
  best_j = 0;
  // Equal values go to the lower index (the lanes interleave the indices).
  const auto take = [&](T value, int32_t index) {
    if (value < best || (value == best && index < best_j)) best = value, best_j = index;
  };
  if (n >= kLanes)
    for (int l = 0; l < kLanes; ++l) take(lane_value[l], lane_index[l]);
  for (; j < n; ++j) take(sq[j] + dot[j], static_cast<int32_t>(j));
}

template <typename T>
void search(const torch::Tensor& x, const torch::Tensor& codes, int64_t rows_per_block,
            torch::Tensor& indices) {
  const int64_t m = x.size(0), k = codes.size(0);
  const auto codes_t = (codes * -2).t().contiguous();      // [D, K]: the GEMM gives -2 x.e
  const auto codes_sq = codes.pow(2).sum(1).contiguous();  // [K]
  const int64_t code_block = std::min(k, kCodesPerBlock);
  auto buffer = torch::empty({rows_per_block, code_block}, x.options());  // [rows, codes]
  auto best = torch::full({m}, std::numeric_limits<T>::infinity(), x.options());
  T* best_ptr = best.template data_ptr<T>();
  int64_t* index_ptr = indices.data_ptr<int64_t>();
  const T* sq_ptr = codes_sq.template data_ptr<T>();
  for (int64_t r0 = 0; r0 < m; r0 += rows_per_block) {
    const int64_t rows = std::min(rows_per_block, m - r0);
    const auto x_rows = x.narrow(0, r0, rows);
    for (int64_t k0 = 0; k0 < k; k0 += code_block) {
      const int64_t cols = std::min(code_block, k - k0);
      auto dot = buffer.narrow(0, 0, rows).narrow(1, 0, cols);
      if (cols != code_block) dot = torch::empty({rows, cols}, x.options());
      torch::mm_out(dot, x_rows, codes_t.narrow(1, k0, cols));  // [rows, cols]
      const T* dot_ptr = dot.template data_ptr<T>();
      const int64_t stride = dot.stride(0);
      at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          T value;
          int32_t j;
          scan_row(dot_ptr + i * stride, sq_ptr + k0, cols, value, j);
          // Blocks come in increasing code order: on a tie the earlier block's index stays.
          if (value < best_ptr[r0 + i]) {
            best_ptr[r0 + i] = value;
            index_ptr[r0 + i] = k0 + j;
          }
        }
      });
    }
  }
}

}  // namespace

torch::Tensor nearest_code(const torch::Tensor& x, const torch::Tensor& codes,
                           int64_t rows_per_block) {
  if (x.dim() != 2 || codes.dim() != 2 || x.size(1) != codes.size(1) || codes.size(0) == 0)
    fail("nearest_code", "expected x [M, D] and codes [K > 0, D], got {} and {}",
         shape_str(x.sizes()), shape_str(codes.sizes()));
  if (x.scalar_type() != codes.scalar_type() || x.device() != codes.device())
    fail("nearest_code", "x and codes differ in dtype or device");
  torch::NoGradGuard no_grad;
  const int64_t m = x.size(0);
  auto indices = torch::zeros({m}, x.options().dtype(torch::kLong));  // [M]
  if (m == 0) return indices;
  const int64_t rows = std::min(rows_per_block > 0 ? rows_per_block : kRowsPerBlock, m);
  if (!x.device().is_cpu() ||
      (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kFloat64)) {
    // GPUs: the same blocks through addmm + argmin (fast there); no [M, K] matrix either.
    const auto codes_t = codes.t(), codes_sq = codes.pow(2).sum(1);  // [D, K], [K]
    for (int64_t r0 = 0; r0 < m; r0 += rows) {
      const auto dist = torch::addmm(codes_sq, x.narrow(0, r0, std::min(rows, m - r0)), codes_t,
                                     /*beta=*/1, /*alpha=*/-2);  // [rows, K]
      indices.narrow(0, r0, dist.size(0)).copy_(dist.argmin(1));
    }
    return indices;
  }
  const auto xc = x.contiguous();
  if (x.scalar_type() == torch::kFloat32)
    search<float>(xc, codes, rows, indices);
  else
    search<double>(xc, codes, rows, indices);
  return indices;
}

}  // namespace lf
