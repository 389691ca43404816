// Data loading throughput (images/s): Fashion-MNIST through the DataLoader, and an image folder
// (PNG decode + centre crop + resize) with 0 workers vs one per core.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "core/runtime.h"
#include "data/data_loader.h"
#include "data/dataset_factory.h"
#include "data/idx_dataset.h"
#include "io/image.h"
#include "process_usage.h"

namespace {

lf::DatasetPtr fashion_mnist() {
  static lf::DatasetPtr dataset = lf::open_dataset(lf::DatasetSpec{});
  return dataset;
}

lf::DatasetPtr png_folder() {
  static lf::DatasetPtr dataset = [] {
    const std::string dir =
        std::filesystem::temp_directory_path().string() + "/lf_bench_png_folder";
    if (!std::filesystem::exists(dir + "/255.png")) {
      std::filesystem::create_directories(dir);
      lf::seed_everything(0);
      for (int i = 0; i < 256; ++i)
        lf::save_image(dir + "/" + std::to_string(i) + ".png", torch::rand({3, 178, 218}) * 2 - 1);
    }
    lf::DatasetSpec spec;
    spec.root = dir;
    spec.image_size = 64;
    return lf::open_dataset(spec);
  }();
  return dataset;
}

void run_loader(benchmark::State& state, const lf::DatasetPtr& dataset) {
  lf::set_threads(0);
  lf::DataLoaderOptions options;
  options.batch_size = state.range(0);
  options.num_workers = static_cast<int>(state.range(1));
  lf::DataLoader loader(dataset, options);
  int64_t images = 0;
  for (auto _ : state) {
    auto batch = loader.next();
    benchmark::DoNotOptimize(batch.images.data_ptr<float>());
    images += batch.images.size(0);
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

void BM_FashionMnistLoader(benchmark::State& state) {
  run_loader(state, fashion_mnist());
}
void BM_PngFolderLoader(benchmark::State& state) {
  run_loader(state, png_folder());
}

// Reading and decompressing the 60000-image training split into memory.
void BM_FashionMnistOpen(benchmark::State& state) {
  int64_t images = 0;
  for (auto _ : state) {
    lf::IdxDataset dataset(lf::IdxDatasetOptions{});
    images += dataset.size();
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FashionMnistOpen)->Unit(benchmark::kMillisecond)->UseRealTime();

// args: batch size, workers (-1 = one per core)
BENCHMARK(BM_FashionMnistLoader)
    ->Args({64, 0})
    ->Args({64, -1})
    ->Args({256, 0})
    ->Args({256, -1})
    ->UseRealTime();
BENCHMARK(BM_PngFolderLoader)->Args({32, 0})->Args({32, -1})->UseRealTime();

}  // namespace

// Google Benchmark's main, then what the process cost the kernel (bench/process_usage.h).
LF_BENCHMARK_MAIN_WITH_PROCESS_USAGE()
