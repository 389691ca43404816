// Exact streaming against untiled encode / decode of the Stable Diffusion 1.x VAE (full size,
// random weights, float32 CPU): time, peak resident memory of the whole process during the call
// (weights included; each case in a fresh child process) and PSNR of the streamed output against
// the untiled one, on a structured input (large bright and dark regions, a gradient, noise).
//
//   build/bench/streaming_bench [--sizes 512 1024] [--untiled-max 1024] [--parts decode encode]
//                               [--threads N] [--half] [--recompute] [--band-mb 64]
//   build/bench/streaming_bench --model RUN [RUN...] [--band-kb 64]
// --half adds streaming with float16 storage; --recompute adds float16 storage with the
// full-resolution level recomputed instead of stored. --model compares instead, in one process,
// streamed and untiled decode and encode + decode of trained VQGAN / KL runs on a mosaic of their
// test images (an odd size, so padding is exercised), with bands small enough to cut it in many.
//
// Not a Google Benchmark: every case needs a process of its own for its memory high-water mark,
// and one run per case (the larger ones take minutes) is what the machine allows.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "models/ldm_autoencoder.h"
#include "resident_memory.h"
#include "train/checkpoint.h"

namespace {

struct Args {
  std::vector<int64_t> sizes = {512, 1024};
  std::vector<std::string> parts = {"decode", "encode"};
  int64_t untiled_max = 1024;  // larger sizes run streamed only
  int threads = 0;
  bool half = false;       // also streamed with float16 storage
  bool recompute = false;  // also float16 storage with the full-resolution level recomputed
  int64_t band_mb = 64;
  std::vector<std::string> models;  // trained VQGAN / KL runs: the exactness table on real weights
  int64_t band_kb = 64;
  // Child mode: --case PART SIZE MODE OUT
  std::string case_part, case_mode, case_out;
  int64_t case_size = 0;
};

// Large constant regions, a gradient and noise: statistics errors show on this, not on noise.
torch::Tensor structured(int64_t c, int64_t h, int64_t w, double scale) {
  torch::manual_seed(7);
  auto x = torch::zeros({1, c, h, w});
  x.narrow(2, 0, h / 2).narrow(3, 0, w / 3).fill_(1.0);
  x.narrow(2, h / 2, h - h / 2).narrow(3, w / 2, w - w / 2).fill_(-0.8);
  x += torch::linspace(-0.5, 0.5, w).reshape({1, 1, 1, w}) + 0.2 * torch::randn({1, c, h, w});
  return x * scale;
}

// Child: one call, then {"ms", "peak_mb"} on stdout and the output in `out`.
int run_case(const Args& a) {
  torch::manual_seed(0);
  lf::AutoencoderKL vae(lf::autoencoder_kl_preset("sd_v1").loss(std::nullopt));
  vae->eval();
  torch::NoGradGuard no_grad;
  lf::MemoryPlan plan;
  if (a.case_mode != "untiled")
    plan.stream(true).streaming(
        lf::StreamingOptions()
            .band_bytes(a.band_mb << 20)
            .half_storage(a.case_mode != "streamed")
            .recompute_full_resolution(a.case_mode == "streamed_recompute"));
  vae->set_memory_plan(plan);
  const bool decode = a.case_part == "decode";
  const auto input = decode ? structured(4, a.case_size / 8, a.case_size / 8, 4.0)
                            : structured(3, a.case_size, a.case_size, 1.0);
  // The high-water mark restarts here: model construction's transients do not count, the
  // resident weights do.
  lf::release_free_memory();
  std::ofstream("/proc/self/clear_refs") << "5";
  const double base_mb = static_cast<double>(lf::bench::status_kb("VmRSS:")) / 1024.0;
  const auto start = std::chrono::steady_clock::now();
  const auto out = decode ? vae->decode_latents(input) : vae->encode_moments(input);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double peak_mb = static_cast<double>(lf::bench::status_kb("VmHWM:")) / 1024.0;
  lf::save_safetensors(a.case_out, {{"out", out.contiguous()}}, {});
  std::printf("%.1f %.1f %.1f\n", ms, peak_mb, base_mb);
  return 0;
}

struct CaseResult {
  bool ok = false;
  double ms = 0, peak_mb = 0, base_mb = 0;
  torch::Tensor out;
};

CaseResult measure(const Args& a, const std::string& part, int64_t size, const std::string& mode) {
  const std::string out = "/tmp/streaming_bench_" + std::to_string(getpid()) + "_" + part + "_" +
                          std::to_string(size) + "_" + mode + ".safetensors";
  const std::string cmd = "/proc/" + std::to_string(getpid()) + "/exe --threads " +
                          std::to_string(torch::get_num_threads()) + " --band-mb " +
                          std::to_string(a.band_mb) + " --case " + part + " " +
                          std::to_string(size) + " " + mode + " " + out;
  CaseResult r;
  if (std::FILE* pipe = popen(cmd.c_str(), "r")) {
    r.ok = std::fscanf(pipe, "%lf %lf %lf", &r.ms, &r.peak_mb, &r.base_mb) == 3;
    pclose(pipe);
  }
  if (r.ok) r.out = lf::load_safetensors(out).at("out");
  std::remove(out.c_str());
  return r;
}

// PSNR of y against x, peak = x's range.
double psnr(const torch::Tensor& y, const torch::Tensor& x) {
  const double mse = (y.to(torch::kDouble) - x.to(torch::kDouble)).pow(2).mean().item<double>();
  const double range = (x.max() - x.min()).item<double>();
  return mse == 0 ? INFINITY : 10 * std::log10(range * range / mse);
}

Args parse(int argc, char** argv) {
  Args a;
  const auto list = [&](int& i) {
    std::vector<std::string> v;
    while (i + 1 < argc && argv[i + 1][0] != '-') v.push_back(argv[++i]);
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sizes") {
      a.sizes.clear();
      for (const auto& s : list(i)) a.sizes.push_back(std::stoll(s));
    } else if (arg == "--parts") {
      a.parts = list(i);
    } else if (arg == "--untiled-max" && i + 1 < argc) {
      a.untiled_max = std::stoll(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      a.threads = std::stoi(argv[++i]);
    } else if (arg == "--band-mb" && i + 1 < argc) {
      a.band_mb = std::stoll(argv[++i]);
    } else if (arg == "--model") {
      a.models = list(i);
    } else if (arg == "--band-kb" && i + 1 < argc) {
      a.band_kb = std::stoll(argv[++i]);
    } else if (arg == "--half") {
      a.half = true;
    } else if (arg == "--recompute") {
      a.recompute = true;
    } else if (arg == "--case" && i + 4 < argc) {
      a.case_part = argv[++i];
      a.case_size = std::stoll(argv[++i]);
      a.case_mode = argv[++i];
      a.case_out = argv[++i];
    } else {
      std::fprintf(stderr, "streaming_bench: unknown argument '%s'\n", arg.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Trained runs: a mosaic of test images, 221 x 283 px (7 x 9 images, cropped to sides that are
// not multiples of the downsampling factor), decoded and reconstructed untiled and streamed.
int compare_trained(const Args& a) {
  std::printf(
      "Trained runs: streamed against untiled, float32 CPU, %d threads, bands of %lld KiB\n\n"
      "| run | part | mode | bands of the finest level | time (ms) | PSNR vs untiled (dB) | max "
      "abs "
      "diff |\n|---|---|---|---|---|---|---|\n",
      torch::get_num_threads(), static_cast<long long>(a.band_kb));
  torch::NoGradGuard no_grad;
  for (const auto& run : a.models) {
    auto loaded = lf::load_model(run, torch::kCPU);
    auto* ldm = dynamic_cast<lf::LdmAutoencoderImpl*>(loaded.model.get());
    if (!ldm) {
      std::fprintf(stderr, "streaming_bench: --model needs a VQGAN or KL run, %s is a %s\n",
                   run.c_str(), loaded.model->kind().c_str());
      return 1;
    }
    ldm->eval();
    lf::DatasetSpec spec = lf::DatasetSpec::from_config(loaded.config.sub("data"));
    spec.split = "test";
    spec.limit = 63;
    std::vector<int64_t> indices(63);
    for (int64_t i = 0; i < 63; ++i) indices[static_cast<size_t>(i)] = i;
    const auto images = lf::open_dataset(spec)->get_batch(indices).images;
    const int64_t c = images.size(1), s = images.size(2);
    const auto x = images.reshape({7, 9, c, s, s})
                       .permute({2, 0, 3, 1, 4})
                       .reshape({1, c, 7 * s, 9 * s})
                       .narrow(2, 0, 7 * s - 3)
                       .narrow(3, 0, 9 * s - 5)
                       .contiguous();
    const std::string name = loaded.model->kind() + " " + run + ", " + std::to_string(x.size(2)) +
                             "x" + std::to_string(x.size(3)) + " px";
    ldm->set_memory_plan(lf::MemoryPlan());
    const auto code = ldm->encode(x);
    const auto decoded = ldm->decode(code);
    const auto reconstructed = ldm->reconstruct(x);
    const int64_t rows = decoded.size(2);
    for (const std::string mode : {"streamed", "streamed_half", "streamed_recompute"}) {
      const auto options = lf::StreamingOptions()
                               .band_bytes(a.band_kb << 10)
                               .half_storage(mode != "streamed")
                               .recompute_full_resolution(mode == "streamed_recompute");
      ldm->set_memory_plan(lf::MemoryPlan().stream(true).streaming(options));
      for (const std::string part : {"decode", "encode + decode"}) {
        const auto start = std::chrono::steady_clock::now();
        const auto y = part == "decode" ? ldm->decode(code) : ldm->reconstruct(x);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        const auto& reference = part == "decode" ? decoded : reconstructed;
        // Bands of a finest-level convolution (4 c_in + 6 c_out floats per column of a band,
        // at least 4 rows), as streaming_coder.cpp sizes them.
        const int64_t row_bytes = 4 * decoded.size(3) * 10 * ldm->ddconfig().ch();
        const int64_t band_rows = std::max<int64_t>(4, (a.band_kb << 10) / row_bytes);
        std::printf("| %s | %s | %s | %lld | %.0f | %.1f | %.2e |\n", name.c_str(), part.c_str(),
                    mode.c_str(), static_cast<long long>((rows + band_rows - 1) / band_rows), ms,
                    psnr(y, reference), (y - reference).abs().max().item<double>());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  lf::set_threads(args.threads);
  if (args.case_size > 0) return run_case(args);
  if (!args.models.empty()) return compare_trained(args);
  std::printf(
      "SD 1.x VAE, random weights, float32 CPU, batch 1, %d threads, one run per case, bands of "
      "%lld MiB\n\n| part | size | mode | time (s) | x untiled | peak RSS (MB) | RSS before (MB) | "
      "PSNR vs untiled (dB) | max abs diff |\n|---|---|---|---|---|---|---|---|---|\n",
      torch::get_num_threads(), static_cast<long long>(args.band_mb));
  for (const auto& part : args.parts) {
    for (auto size : args.sizes) {
      CaseResult untiled;
      std::vector<std::string> modes;
      if (size <= args.untiled_max) modes.push_back("untiled");
      modes.push_back("streamed");
      if (args.half) modes.push_back("streamed_half");
      if (args.recompute) modes.push_back("streamed_recompute");
      for (const auto& mode : modes) {
        auto r = measure(args, part, size, mode);
        if (!r.ok) {
          std::printf("| %s | %lld | %s | failed | | | | | |\n", part.c_str(),
                      static_cast<long long>(size), mode.c_str());
          continue;
        }
        std::string ratio = "-", quality = "-", diff = "-";
        if (mode == "untiled") {
          untiled = r;
        } else if (untiled.ok) {
          ratio = std::to_string(r.ms / untiled.ms).substr(0, 4);
          quality = std::to_string(psnr(r.out, untiled.out)).substr(0, 5);
          diff = std::to_string((r.out - untiled.out).abs().max().item<double>());
        }
        std::printf("| %s | %lld | %s | %.1f | %s | %.0f | %.0f | %s | %s |\n", part.c_str(),
                    static_cast<long long>(size), mode.c_str(), r.ms / 1000, ratio.c_str(),
                    r.peak_mb, r.base_mb, quality.c_str(), diff.c_str());
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
