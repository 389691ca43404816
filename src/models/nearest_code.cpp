// Blocked nearest-code search: see nearest_code.h.
#include "models/nearest_code.h"

#include <ATen/Parallel.h>

#ifndef LF_HAVE_ONEDNN
#define LF_HAVE_ONEDNN 0  // CMakeLists.txt defines it where oneDNN's headers are found
#endif
#if LF_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"

namespace lf {
namespace {

// A block of rows x codes is 256 x 2048 float32 = 2 MB: written by the GEMM and read back by the
// scan while it is still in cache (a whole [rows, K] block at K = 16384 is not).
constexpr int64_t kRowsPerBlock = 256;
constexpr int64_t kCodesPerBlock = 2048;
constexpr int kLanes = 16;  // independent running minima, so the compiler can vectorise the scan

// The end of a row's scan: the lanes' running minima (arrays or vectors of kLanes) and the tail
// [j, n) folded into the first index of the smallest value. Equal values go to the lower index
// (the lanes interleave the indices).
template <typename T, typename Values, typename Indices>
void finish_scan(const Values& lane_value, const Indices& lane_index, const T* dot, const T* sq,
                 int64_t j, int64_t n, T& best, int32_t& best_j) {
  best = std::numeric_limits<T>::infinity();
  best_j = 0;
  const auto take = [&](T value, int32_t index) {
    if (value < best || (value == best && index < best_j)) best = value, best_j = index;
  };
  if (n >= kLanes)
    for (int l = 0; l < kLanes; ++l) take(lane_value[l], lane_index[l]);
  for (; j < n; ++j) take(sq[j] + dot[j], static_cast<int32_t>(j));
}

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
  finish_scan(lane_value, lane_index, dot, sq, j, n, best, best_j);
}

// The float32 scan, the hot loop of the search (as many elements as the GEMM has outputs): GCC's
// vector extensions, compiled for AVX-512, AVX2 and plain SSE and chosen on the CPU at load time
// (target_clones). Written as one 16-lane vector so that every build vectorises it: the loop
// above, inlined into the search, came out as scalar compares and branches (GCC 12), twice the
// GEMM's time.
using Floats16 = float __attribute__((vector_size(64)));
using Ints16 = int32_t __attribute__((vector_size(64)));
static_assert(sizeof(Floats16) == kLanes * sizeof(float));

__attribute__((target_clones("avx512f", "avx2", "default"))) void scan_row(const float* dot,
                                                                           const float* sq,
                                                                           int64_t n, float& best,
                                                                           int32_t& best_j) {
  const float inf = std::numeric_limits<float>::infinity();
  Floats16 lane_value = {inf, inf, inf, inf, inf, inf, inf, inf,
                         inf, inf, inf, inf, inf, inf, inf, inf};
  Ints16 lane_index = {};
  Ints16 index = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Floats16 d, q;
    std::memcpy(&d, dot + j, sizeof(d));
    std::memcpy(&q, sq + j, sizeof(q));
    const Floats16 v = d + q;
    const Ints16 less = v < lane_value;  // -1 where smaller
    lane_value = less ? v : lane_value;
    lane_index = less ? index : lane_index;
    index += kLanes;
  }
  finish_scan(lane_value, lane_index, dot, sq, j, n, best, best_j);
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

constexpr int64_t kThreadRows = 64;
constexpr int64_t kThreadCodes = 1024;

bool searches_with_onednn(const torch::Tensor& x) {
  return LF_HAVE_ONEDNN && x.device().is_cpu() && x.scalar_type() == torch::kFloat32;
}

#if LF_HAVE_ONEDNN
// float32 on the CPU, each thread on its own blocks of rows (kThreadRows x kThreadCodes, 256 KB,
// within a core's L2): a block's GEMMs run through oneDNN's sgemm on the calling thread (oneDNN
// uses OpenMP and runs single-threaded inside a parallel region), so one thread pool does
// everything. search() alternates two: OpenBLAS's (Debian's pthreads build, behind ATen's mm) for
// each GEMM and OpenMP's for the scan, and OpenBLAS's threads spin in sched_yield between the
// GEMMs (73 ms of system time per call at K = 16384): 4.5x slower at K = 16384 (docs/results.md).
void search_onednn(const torch::Tensor& x, const torch::Tensor& codes,
                   const NearestCodeBlock& block, torch::Tensor& indices) {
  const int64_t m = x.size(0), k = codes.size(0), d = x.size(1);
  const auto codes_t = (codes * -2).t().contiguous();      // [D, K]: the GEMM gives -2 x.e
  const auto codes_sq = codes.pow(2).sum(1).contiguous();  // [K]
  const float* x_ptr = x.data_ptr<float>();
  const float* codes_t_ptr = codes_t.data_ptr<float>();
  const float* sq_ptr = codes_sq.data_ptr<float>();
  int64_t* index_ptr = indices.data_ptr<int64_t>();
  const int64_t block_rows = block.rows, code_block = block.codes;
  const int64_t blocks = (m + block_rows - 1) / block_rows;
  std::atomic<int> failed{0};
  // Each thread takes the next block when it is done with one, rather than an equal share: cores
  // need not run at the same speed (one of this machine's two vCPUs is ~10% slower in sgemm).
  std::atomic<int64_t> next_block{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), blocks);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<float> dot(static_cast<size_t>(block_rows * code_block));  // [rows, codes]
    std::vector<float> best(static_cast<size_t>(block_rows));
    for (int64_t b = next_block++; b < blocks && !failed; b = next_block++) {
      const int64_t r0 = b * block_rows, rows = std::min(block_rows, m - r0);
      std::fill(best.begin(), best.end(), std::numeric_limits<float>::infinity());
      for (int64_t k0 = 0; k0 < k; k0 += code_block) {
        const int64_t cols = std::min(code_block, k - k0);
        // Row-major: dot[rows, cols] = x[r0:r0+rows, D] * codes_t[D, k0:k0+cols].
        if (dnnl_sgemm('N', 'N', rows, cols, d, 1.0f, x_ptr + r0 * d, d, codes_t_ptr + k0, k, 0.0f,
                       dot.data(), cols) != dnnl_success) {
          failed = 1;
          return;
        }
        for (int64_t i = 0; i < rows; ++i) {
          float value;
          int32_t j;
          scan_row(dot.data() + i * cols, sq_ptr + k0, cols, value, j);
          // Blocks come in increasing code order: on a tie the earlier block's index stays.
          if (value < best[i]) {
            best[i] = value;
            index_ptr[r0 + i] = k0 + j;
          }
        }
      }
    }
  });
  if (failed)
    fail("nearest_code", "oneDNN's sgemm failed on a [{}, {}] x [{}, {}] block", block_rows, d, d,
         code_block);
}
#endif

}  // namespace

NearestCodeBlock nearest_code_block(const torch::Tensor& x, int64_t num_codes,
                                    int64_t rows_per_block) {
  if (x.dim() != 2 || num_codes < 1)
    fail("nearest_code_block", "expected x [M, D] and num_codes > 0, got {} and {}",
         shape_str(x.sizes()), num_codes);
  const int64_t m = std::max<int64_t>(x.size(0), 1);
  const int64_t rows = std::min(rows_per_block > 0 ? rows_per_block : kRowsPerBlock, m);
  if (searches_with_onednn(x))
    return {std::min(rows, kThreadRows), std::min(num_codes, kThreadCodes),
            std::min<int64_t>(at::get_num_threads(), (m + kThreadRows - 1) / kThreadRows)};
  const bool scanned = x.device().is_cpu() &&
                       (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64);
  return {rows, scanned ? std::min(num_codes, kCodesPerBlock) : num_codes, 1};
}

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
  const NearestCodeBlock block = nearest_code_block(x, codes.size(0), rows_per_block);
  if (!x.device().is_cpu() ||
      (x.scalar_type() != torch::kFloat32 && x.scalar_type() != torch::kFloat64)) {
    // GPUs: the same blocks through addmm + argmin (fast there); no [M, K] matrix either.
    const auto codes_t = codes.t(), codes_sq = codes.pow(2).sum(1);  // [D, K], [K]
    for (int64_t r0 = 0; r0 < m; r0 += block.rows) {
      const auto dist = torch::addmm(codes_sq, x.narrow(0, r0, std::min(block.rows, m - r0)),
                                     codes_t, /*beta=*/1, /*alpha=*/-2);  // [rows, K]
      indices.narrow(0, r0, dist.size(0)).copy_(dist.argmin(1));
    }
    return indices;
  }
  const auto xc = x.contiguous();
#if LF_HAVE_ONEDNN
  if (searches_with_onednn(x)) {
    search_onednn(xc, codes.contiguous(), block, indices);
    return indices;
  }
#endif
  if (x.scalar_type() == torch::kFloat32)
    search<float>(xc, codes, block.rows, indices);
  else
    search<double>(xc, codes, block.rows, indices);
  return indices;
}

}  // namespace lf
