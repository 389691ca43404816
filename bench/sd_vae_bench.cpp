// Stable Diffusion 1.x VAE (full size, random weights) on the CPU: encode and decode time at 256
// and 512 px against the reference ldm modules run by Debian's python3-torch in the same run
// (bench/sd_vae_reference.py), as users run it and with tcmalloc preloaded (what is ours beyond
// the allocator), with the page faults and system time of each per call, both as a fraction of the
// machine's measured float32 matmul FLOP/s and of its measured 3x3 conv FLOP/s,
// the peak memory of decode at 512 and 1024 px with and without tiling (each measured in a
// child process of its own, from its resident-set high-water mark), and the seam: how far tiled
// encode/decode output is from untiled output (random SD weights at 256 px, and with --seam-model
// a trained VQGAN/KL run on a 4x4 grid of Fashion-MNIST test images).
//
//   build/bench/sd_vae_bench [--sizes 256 512] [--repeats 3] [--memory-sizes 512 1024]
//                            [--tile 256] [--no-reference] [--threads N] [--seam-model RUN]
//                            [--conv auto|direct] [--no-seam] [--conv-table]
//
// --conv-table only times single 3x3 layers, LibTorch's direct conv against oneDNN's Winograd
// (the data behind the size threshold in src/models/conv_algorithm.cpp).
//
// Not a Google Benchmark: the reference must run in the same session and the memory cases in
// fresh processes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "io/config.h"
#include "models/autoencoder_kl.h"
#include "models/conv_algorithm.h"
#include "models/ldm_autoencoder.h"
#include "models/model_registry.h"
#include "models/winograd_conv.h"
#include "process_usage.h"
#include "resident_memory.h"
#include "train/checkpoint.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::vector<int64_t> sizes = {256, 512};
  std::vector<int64_t> memory_sizes = {512, 1024};
  int repeats = 3;
  int64_t tile = 256;
  int threads = 0;
  bool reference = true;
  bool seam = true;
  bool conv_table = false;
  std::string conv = "auto";
  // Child mode: "--memory-case SIZE TILE" measures one decode and prints the peak in MB.
  int64_t memory_case_size = 0;
  int64_t memory_case_tile = 0;
  std::string seam_model;  // a trained VQGAN / KL run folder
};

lf::AutoencoderKL make_sd_vae() {
  torch::manual_seed(0);
  auto model = lf::make_model(
      lf::Config(lf::Json{{"type", "autoencoder_kl"}, {"preset", "sd_v1"}, {"loss", nullptr}}));
  auto kl = std::dynamic_pointer_cast<lf::AutoencoderKLImpl>(model);
  kl->eval();
  return lf::AutoencoderKL(kl);
}

template <typename Fn>
double median_ms(Fn&& fn, int repeats) {
  fn();  // warm-up
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double matmul_gflops() {
  const int64_t n = 2048;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  const double ms = median_ms([&] { torch::mm(a, b); }, 5);
  return 2.0 * n * n * n / (ms * 1e-3) / 1e9;
}

// LibTorch's direct 3x3 conv (oneDNN) on a decoder-sized layer, 256 ch at 128 x 128: the rate the
// decoder's nominal FLOPs are measured against.
double conv_gflops() {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 256, 128, 128}), w = torch::randn({256, 256, 3, 3}) * 0.02;
  const double ms = median_ms([&] { torch::conv2d(x, w, {}, 1, 1); }, 5);
  return 2.0 * 256 * 256 * 9 * 128 * 128 / (ms * 1e-3) / 1e9;
}

// Analytic multiply-adds of the SD encoder (+ quant_conv) and decoder (+ post_quant_conv) at
// size x size, counting convolutions and the attention matmuls (as bench/sd_vae_reference.py).
double sd_flops(const std::string& part, int64_t size) {
  const auto conv = [](double cin, double cout, double k, double h, double w) {
    return cin * cout * k * k * h * w;
  };
  const auto resnet = [&](double cin, double cout, double h, double w) {
    return conv(cin, cout, 3, h, w) + conv(cout, cout, 3, h, w) +
           (cin != cout ? conv(cin, cout, 1, h, w) : 0.0);
  };
  const auto attn = [&](double c, double h, double w) {
    return 4 * conv(c, c, 1, h, w) + 2 * (h * w) * (h * w) * c;
  };
  const std::vector<double> mult = {1, 2, 4, 4};
  const double ch = 128;
  double macs = 0;
  if (part == "encode") {
    double res = static_cast<double>(size), in = ch;
    macs += conv(3, ch, 3, res, res);
    for (size_t level = 0; level < mult.size(); ++level) {
      const double out = ch * mult[level];
      for (int b = 0; b < 2; ++b, in = out) macs += resnet(in, out, res, res);
      if (level + 1 < mult.size()) {
        res /= 2;
        macs += conv(out, out, 3, res, res);  // stride-2 downsample conv
      }
    }
    macs += 2 * resnet(in, in, res, res) + attn(in, res, res);
    macs += conv(in, 8, 3, res, res) + conv(8, 8, 1, res, res);
  } else {
    double res = static_cast<double>(size) / 8, in = ch * mult.back();
    macs += conv(4, 4, 1, res, res) + conv(4, in, 3, res, res);
    macs += 2 * resnet(in, in, res, res) + attn(in, res, res);
    for (int level = static_cast<int>(mult.size()) - 1; level >= 0; --level) {
      const double out = ch * mult[level];
      for (int b = 0; b < 3; ++b, in = out) macs += resnet(in, out, res, res);
      if (level > 0) {
        res *= 2;
        macs += conv(out, out, 3, res, res);  // conv after nearest upsampling
      }
    }
    macs += conv(in, 3, 3, res, res);
  }
  return 2 * macs;
}

struct Timing {
  double ms = 0;
  double faults = 0, system_s = 0;  // per call
};

// Direct (LibTorch) against Winograd (oneDNN, NCHW in and out, reorders included) per 3x3 layer.
int print_conv_table(int repeats) {
  if (!lf::winograd::available()) {
    std::printf("Winograd unavailable: %s\n", lf::winograd::describe().c_str());
    return 0;
  }
  std::printf("3x3 conv, stride 1, batch 1, %d threads: direct vs Winograd (%s)\n\n",
              torch::get_num_threads(), lf::winograd::describe().c_str());
  std::printf(
      "| channels | H = W | GFLOP | direct (ms) | Winograd (ms) | speed-up | max rel diff |\n"
      "|---|---|---|---|---|---|---|\n");
  torch::NoGradGuard no_grad;
  for (const auto& [c, side] : std::vector<std::pair<int64_t, int64_t>>{{512, 16},
                                                                        {512, 32},
                                                                        {512, 64},
                                                                        {256, 32},
                                                                        {256, 64},
                                                                        {256, 128},
                                                                        {128, 64},
                                                                        {128, 128},
                                                                        {128, 256},
                                                                        {64, 64},
                                                                        {64, 128}}) {
    const auto x = torch::randn({1, c, side, side});
    const auto w = torch::randn({c, c, 3, 3}) * (1.0 / std::sqrt(9.0 * c));
    const auto b = torch::randn({c}) * 0.1;
    const double direct = median_ms([&] { torch::conv2d(x, w, b, 1, 1); }, repeats);
    const double wino = median_ms([&] { lf::winograd::conv3x3(x, w, b); }, repeats);
    const auto ref = torch::conv2d(x, w, b, 1, 1);
    const double rel =
        ((lf::winograd::conv3x3(x, w, b) - ref).abs().max() / ref.abs().max()).item<double>();
    std::printf("| %lld | %lld | %.1f | %.1f | %.1f | %.2f | %.1e |\n", static_cast<long long>(c),
                static_cast<long long>(side), 2.0 * c * c * 9 * side * side / 1e9, direct, wino,
                direct / wino, rel);
    std::fflush(stdout);
  }
  lf::bench::print_process_usage();
  return 0;
}

// Runs bench/sd_vae_reference.py (with `preload` in LD_PRELOAD when given) and collects
// {part/size -> timing}.
std::map<std::string, Timing> run_reference(const Args& args, const std::string& preload = "") {
  std::string cmd = (preload.empty() ? "" : "LD_PRELOAD=" + preload + " ") + "/usr/bin/python3 " +
                    std::string(LF_SOURCE_DIR) + "/bench/sd_vae_reference.py --repeats " +
                    std::to_string(args.repeats) + " --threads " +
                    std::to_string(torch::get_num_threads()) + " --sizes";
  for (auto s : args.sizes) cmd += " " + std::to_string(s);
  cmd += " 2>/dev/null";
  std::map<std::string, Timing> result;
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) {
    try {
      const auto line = lf::Json::parse(buffer);
      if (line.contains("part") && line.contains("size") && line.contains("ms"))
        result[line["part"].get<std::string>() + "/" +
               std::to_string(line["size"].get<int64_t>())] = {line["ms"].get<double>(),
                                                               line.value("minflt_per_call", 0.0),
                                                               line.value("sys_s_per_call", 0.0)};
    } catch (const std::exception&) {
    }
  }
  pclose(pipe);
  return result;
}

// Child: one decode of a size x size image's latent, printing the resident peak it added.
int memory_case(const Args& args) {
  auto vae = make_sd_vae();
  torch::NoGradGuard no_grad;
  if (args.memory_case_tile > 0)
    vae->set_tiling({args.memory_case_tile, args.memory_case_tile / 4});
  const auto z = torch::randn({1, 4, args.memory_case_size / 8, args.memory_case_size / 8});
  const double mb = lf::bench::peak_extra_mb([&] { vae->decode_latents(z); });
  std::printf("%.1f\n", mb);
  return 0;
}

double measure_memory(int64_t size, int64_t tile, const std::string& conv) {
  const std::string cmd = "/proc/" + std::to_string(getpid()) + "/exe --conv " + conv +
                          " --threads " + std::to_string(torch::get_num_threads()) +
                          " --memory-case " + std::to_string(size) + " " + std::to_string(tile);
  std::FILE* pipe = popen(cmd.c_str(), "r");
  double mb = -1;
  if (pipe) {
    if (std::fscanf(pipe, "%lf", &mb) != 1) mb = -1;
    pclose(pipe);
  }
  return mb;
}

// Tiled vs untiled reconstruction of x through `model` (an ldm autoencoder): max and mean absolute
// difference and the PSNR of the tiled output against the untiled one, for encode-only tiling,
// decode-only tiling and both.
void report_seam(lf::LdmAutoencoderImpl& model, const torch::Tensor& x, int64_t tile,
                 int64_t overlap, const std::string& label) {
  torch::NoGradGuard no_grad;
  const auto split = [&](const torch::Tensor& moments) {  // the decoder's input from the moments
    return moments.narrow(1, 0, model.post_quant_conv->options.in_channels());
  };
  model.set_tiling({});
  const auto moments = model.encode_moments(x);
  const auto full = model.decode_latents(split(moments));
  model.set_tiling({tile, overlap});
  const auto tiled_moments = model.encode_moments(x);
  const auto tiled_decode = model.decode_latents(split(moments));
  const auto tiled_both = model.decode_latents(split(tiled_moments));
  model.set_tiling({});
  const auto row = [&](const char* what, const torch::Tensor& y) {
    const auto diff = (y - full).abs();
    const double mse = (y - full).pow(2).mean().item<double>();
    const double range = (full.max() - full.min()).item<double>();
    std::printf("| %s | %s | %lld / %lld | %.4f | %.5f | %.1f |\n", label.c_str(), what,
                static_cast<long long>(tile), static_cast<long long>(overlap),
                diff.max().item<double>(), diff.mean().item<double>(),
                10 * std::log10(range * range / std::max(mse, 1e-20)));
  };
  row("decode tiled", tiled_decode);
  row("encode + decode tiled", tiled_both);
}

Args parse(int argc, char** argv) {
  Args a;
  const auto list = [&](int& i) {
    std::vector<int64_t> v;
    while (i + 1 < argc && argv[i + 1][0] != '-') v.push_back(std::stoll(argv[++i]));
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sizes")
      a.sizes = list(i);
    else if (arg == "--memory-sizes")
      a.memory_sizes = list(i);
    else if (arg == "--repeats" && i + 1 < argc)
      a.repeats = std::stoi(argv[++i]);
    else if (arg == "--tile" && i + 1 < argc)
      a.tile = std::stoll(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc)
      a.threads = std::stoi(argv[++i]);
    else if (arg == "--no-reference")
      a.reference = false;
    else if (arg == "--no-seam")
      a.seam = false;
    else if (arg == "--conv-table")
      a.conv_table = true;
    else if (arg == "--conv" && i + 1 < argc)
      a.conv = argv[++i];
    else if (arg == "--seam-model" && i + 1 < argc)
      a.seam_model = argv[++i];
    else if (arg == "--memory-case" && i + 2 < argc) {
      a.memory_case_size = std::stoll(argv[++i]);
      a.memory_case_tile = std::stoll(argv[++i]);
    } else {
      std::fprintf(stderr, "sd_vae_bench: unknown argument '%s'\n", arg.c_str());
      std::exit(2);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  lf::set_threads(args.threads);
  lf::set_conv_algorithm(lf::parse_conv_algorithm(args.conv));
  if (args.memory_case_size > 0) return memory_case(args);
  if (args.conv_table) return print_conv_table(std::max(args.repeats, 3));

  std::printf("SD 1.x VAE, float32 CPU, batch 1, %d threads, median of %d after a warm-up\n",
              torch::get_num_threads(), args.repeats);
  std::printf("conv: %s\nallocator: %s\n", lf::conv_algorithm_summary().c_str(),
              lf::allocator_summary().c_str());
  const double peak = matmul_gflops(), conv_peak = conv_gflops();
  std::printf("matmul 2048^3: %.1f GFLOP/s; direct 3x3 conv 256 ch @ 128^2: %.1f GFLOP/s\n\n", peak,
              conv_peak);
  std::map<std::string, Timing> ours;
  {
    auto vae = make_sd_vae();
    torch::NoGradGuard no_grad;
    const auto timed = [&](auto&& fn) {
      Timing t;
      fn();  // warm-up, outside the usage window
      const auto before = lf::bench::process_usage();
      std::vector<double> ms;
      for (int i = 0; i < args.repeats; ++i) {
        const auto start = Clock::now();
        fn();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      }
      std::sort(ms.begin(), ms.end());
      t.ms = ms[ms.size() / 2];
      const auto u = lf::bench::per_call(before, lf::bench::process_usage(), args.repeats);
      t.faults = static_cast<double>(u.minor_faults);
      t.system_s = u.system_s;
      return t;
    };
    for (auto size : args.sizes) {
      const auto x = torch::rand({1, 3, size, size}) * 2 - 1;
      const auto z = torch::randn({1, 4, size / 8, size / 8});
      ours["encode/" + std::to_string(size)] = timed([&] { vae->encode_moments(x); });
      ours["decode/" + std::to_string(size)] = timed([&] { vae->decode_latents(z); });
    }
  }
  const char* tcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
  const bool have_tcmalloc = std::ifstream(tcmalloc).good();
  const auto reference = args.reference ? run_reference(args) : std::map<std::string, Timing>{};
  const auto reference_tc = args.reference && have_tcmalloc ? run_reference(args, tcmalloc)
                                                            : std::map<std::string, Timing>{};
  if (args.reference && !have_tcmalloc)
    std::printf("(%s missing: no tcmalloc reference; scripts/setup.sh installs it)\n", tcmalloc);
  std::printf(
      "| part | size | GFLOP | ours (ms) | ours: faults, sys s / call | ours, %% of matmul | "
      "ours, %% of conv | ldm reference (ms) | ref: faults, sys s / call | ratio (ref / ours) | "
      "reference + tcmalloc (ms) | ratio (ref+tc / ours) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const char* part : {"encode", "decode"}) {
    for (auto size : args.sizes) {
      const std::string key = std::string(part) + "/" + std::to_string(size);
      const double flops = sd_flops(part, size);
      const Timing& t = ours[key];
      const auto pct = [&](double ms, double rate) {
        return 100.0 * flops / (ms * 1e-3) / (rate * 1e9);
      };
      std::printf("| %s | %lld | %.0f | %.0f | %.0f, %.2f | %.0f%% | %.0f%% |", part,
                  static_cast<long long>(size), flops / 1e9, t.ms, t.faults, t.system_s,
                  pct(t.ms, peak), pct(t.ms, conv_peak));
      const auto ref = reference.find(key);
      if (ref != reference.end())
        std::printf(" %.0f | %.0f, %.2f | %.2f |", ref->second.ms, ref->second.faults,
                    ref->second.system_s, ref->second.ms / t.ms);
      else
        std::printf(" - | - | - |");
      const auto tc = reference_tc.find(key);
      if (tc != reference_tc.end())
        std::printf(" %.0f | %.2f |\n", tc->second.ms, tc->second.ms / t.ms);
      else
        std::printf(" - | - |\n");
    }
  }
  if (!args.seam) {
    lf::bench::print_process_usage();
    return 0;
  }
  std::printf(
      "\nSeam: tiled vs untiled output (PSNR against the untiled output, peak = its "
      "range)\n| model | tiled | tile / overlap (px) | max abs diff | mean abs diff | "
      "PSNR (dB) |\n|---|---|---|---|---|---|\n");
  {
    auto vae = make_sd_vae();
    torch::manual_seed(1);
    const auto x = torch::rand({1, 3, 256, 256}) * 2 - 1;
    report_seam(*vae, x, 128, 32, "SD 1.x, random weights, 256 px");
  }
  if (!args.seam_model.empty()) {
    auto loaded = lf::load_model(args.seam_model, torch::kCPU);
    auto* ldm = dynamic_cast<lf::LdmAutoencoderImpl*>(loaded.model.get());
    if (!ldm) {
      std::fprintf(stderr, "sd_vae_bench: --seam-model needs a VQGAN or KL run\n");
      return 1;
    }
    lf::DatasetSpec spec = lf::DatasetSpec::from_config(loaded.config.sub("data"));
    spec.split = "test";
    spec.limit = 16;
    const auto batch =
        lf::open_dataset(spec)->get_batch({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    // A 4x4 mosaic: one 128 px image made of 16 test images.
    const auto x =
        batch.images
            .reshape({4, 4, batch.images.size(1), batch.images.size(2), batch.images.size(3)})
            .permute({2, 0, 3, 1, 4})
            .reshape({1, batch.images.size(1), 4 * batch.images.size(2), 4 * batch.images.size(3)});
    report_seam(*ldm, x, 64, 16, loaded.model->kind() + " " + args.seam_model + ", 128 px");
  }
  if (!args.memory_sizes.empty()) {
    std::printf(
        "\nDecode peak memory (resident set added by one decode, MB; tile %lld px, "
        "overlap %lld):\n| size | untiled | tiled |\n|---|---|---|\n",
        static_cast<long long>(args.tile), static_cast<long long>(args.tile / 4));
    for (auto size : args.memory_sizes)
      std::printf("| %lld | %.0f | %.0f |\n", static_cast<long long>(size),
                  measure_memory(size, 0, args.conv), measure_memory(size, args.tile, args.conv));
  }
  lf::bench::print_process_usage();
  return 0;
}
