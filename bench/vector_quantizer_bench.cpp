// Nearest-code search of the vector quantizer: our blocked ||e||^2 - 2 z e^T GEMMs scanned into a
// running argmin (models/nearest_code.h) against torch::cdist + argmin, for M = 8192 vectors
// (32 x 16 x 16) of D = 64 at K = 512 and 16384; time, peak memory and page faults per call.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "core/runtime.h"
#include "models/nearest_code.h"
#include "models/vector_quantizer.h"
#include "process_usage.h"
#include "resident_memory.h"

namespace {

constexpr int64_t kRows = 8192;  // M: a batch of 32 x 16 x 16 encoder outputs
constexpr int64_t kDim = 64;     // D

using lf::bench::peak_extra_mb;

struct Setup {
  torch::Tensor z;  // [M, D]
  lf::VectorQuantizer vq{nullptr};
};

Setup make_setup(int64_t num_codes, int64_t chunk_size) {
  lf::set_threads(0);
  torch::manual_seed(0);
  Setup s;
  s.vq = lf::VectorQuantizer(lf::VectorQuantizerOptions(num_codes, kDim).chunk_size(chunk_size));
  torch::NoGradGuard no_grad;
  s.vq->embedding->weight.normal_();
  s.z = torch::randn({kRows, kDim});
  return s;
}

void report(benchmark::State& state, int64_t num_codes, double tmp_floats, double peak_mb,
            const lf::bench::ProcessUsage& before) {
  const auto used = lf::bench::per_call(before, lf::bench::process_usage(),
                                        static_cast<int>(std::max<int64_t>(1, state.iterations())));
  state.counters["faults/call"] = static_cast<double>(used.minor_faults);
  state.counters["sys_ms/call"] = used.system_s * 1e3;
  state.counters["K"] = static_cast<double>(num_codes);
  state.counters["largest_tmp_MB"] = tmp_floats * 4 / (1 << 20);
  state.counters["peak_rss_extra_MB"] = peak_mb;
  state.counters["vectors/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kRows),
                                                   benchmark::Counter::kIsRate);
}

// range(0) = K, range(1) = chunk_size (rows of z per distance block; 0 = automatic, 256).
void BM_VqNearestBlocked(benchmark::State& state) {
  const int64_t k = state.range(0), chunk = state.range(1);
  auto s = make_setup(k, chunk);
  s.vq->nearest(s.z);  // warm up (thread pool, allocator)
  const double peak = peak_extra_mb([&] { benchmark::DoNotOptimize(s.vq->nearest(s.z)); });
  const auto before = lf::bench::process_usage();
  for (auto _ : state) {
    auto idx = s.vq->nearest(s.z);
    benchmark::DoNotOptimize(idx.data_ptr<int64_t>());
  }
  // The distance blocks it holds (one per thread where the threads search in parallel).
  const lf::NearestCodeBlock block = lf::nearest_code_block(s.z, k, chunk);
  report(state, k, static_cast<double>(block.rows * block.codes * block.copies), peak, before);
}

// The textbook lookup: the full [M, K] distance matrix from cdist, then argmin.
void BM_VqNearestCdist(benchmark::State& state) {
  const int64_t k = state.range(0);
  auto s = make_setup(k, kRows);
  torch::NoGradGuard no_grad;
  auto codes = s.vq->embedding->weight.detach();
  auto naive = [&] { return torch::cdist(s.z, codes).argmin(1); };
  naive();
  const double peak = peak_extra_mb([&] { benchmark::DoNotOptimize(naive()); });
  const auto before = lf::bench::process_usage();
  for (auto _ : state) {
    auto idx = naive();
    benchmark::DoNotOptimize(idx.data_ptr<int64_t>());
  }
  report(state, k, static_cast<double>(kRows * k), peak, before);
}

BENCHMARK(BM_VqNearestBlocked)
    ->ArgNames({"K", "chunk"})
    ->Args({512, 0})
    ->Args({512, 1024})
    ->Args({16384, 0})
    ->Args({16384, 64})
    ->Args({16384, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_VqNearestCdist)
    ->ArgNames({"K"})
    ->Arg(512)
    ->Arg(16384)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One-off cost of kmeans_init on the first training batch: k-means++ seeding + kmeans_iters Lloyd
// steps. range(0) = K, range(1) = kmeans_iters (0: seeding alone).
void BM_VqKmeansInit(benchmark::State& state) {
  const int64_t k = state.range(0), iters = state.range(1);
  auto s = make_setup(k, kRows);
  auto z = s.z.view({32, 16, 16, kDim}).permute({0, 3, 1, 2});  // [32, 64, 16, 16]
  for (auto _ : state) {
    state.PauseTiming();
    lf::VectorQuantizer vq(
        lf::VectorQuantizerOptions(k, kDim).kmeans_init(true).kmeans_iters(iters));
    state.ResumeTiming();
    auto out = vq->forward(z);
    benchmark::DoNotOptimize(out.indices.data_ptr<int64_t>());
  }
  state.counters["K"] = static_cast<double>(k);
}

BENCHMARK(BM_VqKmeansInit)
    ->ArgNames({"K", "iters"})
    ->Args({512, 0})
    ->Args({512, 10})
    ->Args({16384, 0})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

// Google Benchmark's main, then what the process cost the kernel (bench/process_usage.h).
LF_BENCHMARK_MAIN_WITH_PROCESS_USAGE()
