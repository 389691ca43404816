// The kernels of a training step that we run ourselves instead of LibTorch's, each against
// LibTorch's own in the same run, forward and backward:
// - 3x3 stride-1 convolutions at the shapes of the Fashion-MNIST VQGAN / KL configs: LibTorch's
//   convolution against oneDNN's Winograd (models/winograd_conv.h: NCHW in and out, layout
//   reorders included); the data behind the training threshold in src/models/conv_algorithm.cpp;
// - attention's batched matrix products: torch::bmm against one oneDNN matmul
//   (models/batched_matmul.h).
//
//   build/bench/training_kernels_bench [--batch 32] [--repeats 15] [--threads N]
//
// Not a Google Benchmark: one table of ratios measured side by side.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "models/batched_matmul.h"
#include "models/winograd_conv.h"
#include "process_usage.h"

namespace {

template <class Fn>
double median_ms(Fn&& fn, int repeats) {
  fn();  // warm-up: primitives made, buffers faulted in
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Attention at the VQGAN's 8x8 and 16x16 maps and SD's 64x64 (chunked): scores q k^T
// ([B, HW, C] x [B, C, HW]) and their backward (two more products of the same size); and the GPT
// prior's heads ([N, heads, T, d] views of [N, T, C]) in training and in cached sampling (one
// query position against the stored keys).
void print_matmul_table(int64_t batch, int repeats) {
  std::printf(
      "batched matmul [B, (heads,) M, K] x [B, (heads,) K, N], forward + backward, %d threads: "
      "torch::matmul vs oneDNN\n\n| B | heads | M | K | N | torch::matmul (ms) | oneDNN (ms) | "
      "speed-up | max rel diff |\n|---|---|---|---|---|---|---|---|---|\n",
      torch::get_num_threads());
  struct Shape {
    int64_t b, heads, m, k, n;  // heads 0: three-dimensional operands
  };
  for (const Shape s :
       {Shape{batch, 0, 64, 64, 64}, Shape{batch, 0, 256, 64, 256}, Shape{batch, 0, 64, 128, 64},
        Shape{1, 0, 1024, 512, 4096}, Shape{batch, 4, 50, 32, 50}, Shape{batch, 4, 1, 32, 50}}) {
    torch::manual_seed(0);
    torch::Tensor a, b;
    if (s.heads == 0) {
      a = torch::randn({s.b, s.k, s.m}).transpose(1, 2);  // as attention's q
      b = torch::randn({s.b, s.k, s.n});
    } else {  // [N, T, heads, d] -> [N, heads, T, d], as the GPT's heads
      a = torch::randn({s.b, s.m, s.heads, s.k}).transpose(1, 2);
      b = torch::randn({s.b, s.n, s.heads, s.k}).transpose(1, 2).transpose(-2, -1);
    }
    a.requires_grad_();
    b.requires_grad_();
    const auto g = torch::randn(torch::matmul(a, b).sizes());
    const auto step = [&](bool onednn) {
      for (auto t : {a, b}) t.mutable_grad().reset();
      (onednn ? lf::batched_matmul(a, b) : torch::matmul(a, b)).backward(g);
    };
    const double reference = median_ms([&] { step(false); }, repeats);
    const double ours = median_ms([&] { step(true); }, repeats);
    const auto expected = torch::matmul(a, b);
    const double rel =
        ((lf::batched_matmul(a, b) - expected).abs().max() / expected.abs().max()).item<double>();
    std::printf("| %lld | %lld | %lld | %lld | %lld | %.3f | %.3f | %.2f | %.1e |\n",
                static_cast<long long>(s.b), static_cast<long long>(std::max<int64_t>(s.heads, 1)),
                static_cast<long long>(s.m), static_cast<long long>(s.k),
                static_cast<long long>(s.n), reference, ours, reference / ours, rel);
    std::fflush(stdout);
  }
  std::printf("\n");
}

void print_conv_table(int64_t batch, int repeats) {
  if (!lf::winograd::available()) {
    std::printf("Winograd unavailable: %s\n", lf::winograd::describe().c_str());
    return;
  }
  std::printf(
      "3x3 conv, stride 1, forward + backward (data, weights, bias), batch %lld, %d threads: "
      "LibTorch vs Winograd (%s)\n\n",
      static_cast<long long>(batch), torch::get_num_threads(), lf::winograd::describe().c_str());
  std::printf(
      "| in -> out channels | H = W | N*H*W | LibTorch (ms) | Winograd (ms) | speed-up | max rel "
      "diff (weight gradient) |\n|---|---|---|---|---|---|---|\n");
  struct Layer {
    int64_t c, o, side;
  };
  for (const Layer l :
       {Layer{32, 32, 32}, Layer{64, 32, 32}, Layer{64, 64, 32}, Layer{32, 64, 16},
        Layer{64, 64, 16}, Layer{64, 64, 8}, Layer{128, 128, 8}, Layer{32, 32, 8}}) {
    torch::manual_seed(0);
    const auto x = torch::randn({batch, l.c, l.side, l.side}).requires_grad_();
    const auto w = (torch::randn({l.o, l.c, 3, 3}) / std::sqrt(9.0 * l.c)).requires_grad_();
    const auto b = torch::zeros({l.o}).requires_grad_();
    const auto g = torch::randn({batch, l.o, l.side, l.side});
    const auto step = [&](bool winograd) {
      for (auto t : {x, w, b}) t.mutable_grad().reset();
      const auto y = winograd ? lf::winograd::conv3x3_trainable(x, w, b)
                              : torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
      y.backward(g);
    };
    if (!lf::winograd::trainable(batch, l.c, l.o, l.side, l.side)) {
      std::printf("| %lld -> %lld | %lld | | | no Winograd for this shape | | |\n",
                  static_cast<long long>(l.c), static_cast<long long>(l.o),
                  static_cast<long long>(l.side));
      continue;
    }
    const double direct = median_ms([&] { step(false); }, repeats);
    const double wino = median_ms([&] { step(true); }, repeats);
    step(false);
    const auto reference = w.grad().clone();
    step(true);
    const double rel = ((w.grad() - reference).abs().max() / reference.abs().max()).item<double>();
    std::printf("| %lld -> %lld | %lld | %lld | %.2f | %.2f | %.2f | %.1e |\n",
                static_cast<long long>(l.c), static_cast<long long>(l.o),
                static_cast<long long>(l.side), static_cast<long long>(batch * l.side * l.side),
                direct, wino, direct / wino, rel);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 32;
  int repeats = 15, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--batch" && i + 1 < argc)
      batch = std::atoll(argv[++i]);
    else if (arg == "--repeats" && i + 1 < argc)
      repeats = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: training_kernels_bench [--batch N] [--repeats N] [--threads N]\n");
      return 2;
    }
  }
  lf::set_threads(threads);
  print_matmul_table(batch, repeats);
  print_conv_table(batch, repeats);
  lf::bench::print_process_usage();
  return 0;
}
