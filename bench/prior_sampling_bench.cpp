// GPT prior sampling speed with and without the KV cache: tokens/s for a batch of code maps on the
// Fashion grid (7x7, 49 codes) and on a taming-sized grid (16x16, 256 codes), same weights and
// seed (so the same tokens come out of both). Prints a table with the cache's speed-up.
// Usage: prior_sampling_bench [--n 32] [--repeats 2] [--threads 0]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/runtime.h"
#include "priors/gpt.h"
#include "process_usage.h"

namespace {

double seconds_to_sample(lf::GPT& model, int64_t n, bool kv_cache, int repeats,
                         torch::Tensor* tokens) {
  lf::SamplingOptions options;
  options.kv_cache = kv_cache;
  lf::PriorCondition cond;
  cond.labels = torch::arange(n, torch::kInt64).remainder(10);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto generator = lf::make_generator(0);
    const auto start = std::chrono::steady_clock::now();
    *tokens = model->sample(n, model->grid()[0], model->grid()[1], cond, options, generator);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 32;
  int repeats = 2;
  int threads = 0;  // all cores; 1 is steadier on a shared machine
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--n")) n = std::stoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::stoi(argv[i + 1]);
  }
  lf::set_threads(threads);
  torch::manual_seed(0);
  std::printf(
      "GPT prior sampling, %lld code maps per batch (7x7; 16x16: an eighth), %d threads, best of "
      "%d\n\n",
      static_cast<long long>(n), torch::get_num_threads(), repeats);
  std::printf(
      "| grid | model | codes | batch | no cache (tokens/s) | KV cache (tokens/s) | speed-up | "
      "same tokens |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const auto& [side, name] :
       std::vector<std::pair<int64_t, const char*>>{{7, "fashion"}, {16, "fashion"}}) {
    auto options = lf::gpt_preset(name).num_classes(10).grid({side, side});
    lf::GPT model(options);
    model->eval();
    torch::Tensor cached, uncached;
    // The long grid's uncached sampler is quadratic in the length: a smaller batch keeps it short.
    const int64_t batch = side > 8 ? std::max<int64_t>(1, n / 8) : n;
    const double t_cache = seconds_to_sample(model, batch, true, repeats, &cached);
    const double t_plain = seconds_to_sample(model, batch, false, repeats, &uncached);
    const double tokens = static_cast<double>(batch * side * side);
    int64_t params = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    std::printf("| %lldx%lld | %s, %.1f M | %lld | %lld | %.0f | %.0f | %.2fx | %s |\n",
                static_cast<long long>(side), static_cast<long long>(side), name, params / 1e6,
                static_cast<long long>(side * side), static_cast<long long>(batch),
                tokens / t_plain, tokens / t_cache, t_plain / t_cache,
                torch::equal(cached, uncached) ? "yes" : "NO");
    std::fflush(stdout);
  }
  lf::bench::print_process_usage();
  return 0;
}
