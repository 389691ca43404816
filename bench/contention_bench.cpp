// Training speed when another process is busy on one core: the VQ-VAE of configs/vqvae_fashion.yaml
// (forward, backward, Adam on 128 random 28x28 images) at 1 thread and at all cores, idle and next
// to a busy-looping process, under our default OpenMP wait (spin 30 k iterations, then sleep; set
// at start-up by src/core/process_defaults.cpp), passive (never spin) and libgomp's own default
// (spin 300 k; forced here with GOMP_SPINCOUNT=300000). Each case is a fresh child process, because
// libgomp reads its policy once at load time.
//
//   build/bench/contention_bench [--steps 40] [--config configs/vqvae_fashion.yaml]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "io/config.h"
#include "models/model_registry.h"
#include "process_usage.h"

namespace {

// Child: steps/s and CPU seconds per step of `steps` training steps (after 3 warm-up steps).
int child(const std::string& config_path, int threads, int steps) {
  lf::set_threads(threads);
  torch::manual_seed(0);
  const auto config = lf::Config::from_yaml_file(config_path);
  auto model = lf::make_model(config.sub("model"));
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-4));
  const auto x = torch::rand({128, 1, 28, 28}) * 2 - 1;
  const auto step = [&] {
    optimizer.zero_grad();
    auto out = model->train_step(x);
    out.loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < 3; ++i) step();
  const auto cpu0 = std::clock();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  std::printf("%.3f %.3f\n", steps / s, cpu / steps);
  return 0;
}

// A process spinning on one core until killed.
pid_t start_competitor() {
  const pid_t pid = fork();
  if (pid == 0) {
    volatile unsigned long n = 0;
    for (;;) n = n + 1;
  }
  return pid;
}

struct Result {
  double steps_per_s = 0, cpu_s_per_step = 0;
};

Result run_child(const std::string& env, const std::string& config, int threads, int steps) {
  const std::string cmd = env + " /proc/" + std::to_string(getpid()) + "/exe --child --config " +
                          config + " --threads " + std::to_string(threads) + " --steps " +
                          std::to_string(steps);
  Result r;
  if (std::FILE* pipe = popen(cmd.c_str(), "r")) {
    if (std::fscanf(pipe, "%lf %lf", &r.steps_per_s, &r.cpu_s_per_step) != 2) r = {};
    pclose(pipe);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = std::string(LF_SOURCE_DIR) + "/configs/vqvae_fashion.yaml";
  int steps = 40, threads = 0;
  bool is_child = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--child")
      is_child = true;
    else if (arg == "--config" && i + 1 < argc)
      config = argv[++i];
    else if (arg == "--steps" && i + 1 < argc)
      steps = std::stoi(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc)
      threads = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "contention_bench: unknown argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  if (is_child) return child(config, threads, steps);

  const int cores = lf::hardware_threads();
  std::printf("Training steps/s (%s, batch 128 random images, %d steps), %d cores\n\n",
              config.c_str(), steps, cores);
  std::printf(
      "| OpenMP wait | threads | idle (step/s) | next to a busy process (step/s) | kept | CPU s / "
      "step (busy) |\n|---|---|---|---|---|---|\n");
  const std::vector<std::pair<std::string, std::string>> policies = {
      {"our default (spin 30k)", "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT"},
      {"passive (spin 0)", "env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=PASSIVE"},
      {"libgomp default (spin 300k)", "env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000"}};
  for (const auto& [name, env] : policies) {
    for (int t : {cores, 1}) {
      const auto idle = run_child(env, config, t, steps);
      const pid_t competitor = start_competitor();
      const auto busy = run_child(env, config, t, steps);
      kill(competitor, SIGKILL);
      waitpid(competitor, nullptr, 0);
      std::printf("| %s | %d | %.2f | %.2f | %.0f%% | %.3f |\n", name.c_str(), t, idle.steps_per_s,
                  busy.steps_per_s, 100.0 * busy.steps_per_s / std::max(idle.steps_per_s, 1e-9),
                  busy.cpu_s_per_step);
      std::fflush(stdout);
    }
  }
  lf::bench::print_process_usage();
  return 0;
}
