// `latentforge train`: train a model from a YAML config into a run folder, resume it exactly, and
// leave metrics, grids and plots behind (src/runs/training_run.h does the work).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "distributed/data_parallel.h"
#include "distributed/dist_env.h"
#include "distributed/local_launcher.h"
#include "runs/training_run.h"
#include "train/stop_request.h"

namespace lf::cli {

namespace {

struct TrainCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  std::string resume;
  bool force = false;
  bool no_report = false;
  int64_t eval_limit = 0;
  int nproc = 1;
  std::string dist_backend = "auto";
  double dist_timeout = 120;
};

// The command line of one worker of `--nproc N`: ours without --nproc.
std::vector<std::string> worker_argv(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  return out;
}

void run_train(const TrainCommandOptions& o, const GlobalOptions& globals) {
  const auto env = DistEnv::from_environment();
  if (o.nproc > 1) {
    if (env && env->world_size > 1)
      throw Error("[train] --nproc: already one of " + std::to_string(env->world_size) +
                  " processes (WORLD_SIZE is set, e.g. by torchrun): leave --nproc out");
    LocalLaunch launch;
    launch.argv = worker_argv(globals.argv);
    launch.nproc = o.nproc;
    launch.threads_per_worker = globals.threads;
    const int code = launch_local_workers(launch);
    if (code != 0) std::exit(code);
    return;
  }
  apply_globals(globals);
  std::unique_ptr<DataParallel> parallel;
  if (env && env->world_size > 1) {
    // Launched by torchrun without --threads / LF_THREADS: the cores shared between the
    // processes of this machine, as --nproc does.
    if (globals.threads == 0 && !std::getenv("LF_THREADS")) {
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      torch::set_num_threads(std::max(1, cores / env->local_world_size));
    }
    DataParallelOptions options;
    options.backend = o.dist_backend;
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.dist_timeout * 1000));
    torch::Device device = parse_device(globals.device);
    if (device.is_cuda()) device = torch::Device(torch::kCUDA, env->local_rank);  // one GPU each
    parallel = std::make_unique<DataParallel>(*env, device, options);
    if (!parallel->is_root()) spdlog::set_level(spdlog::level::warn);  // rank 0 tells the story
  }
  TrainingRequest request;
  request.parallel = parallel.get();
  request.config = o.config;
  request.overrides = o.overrides;
  request.run_dir = o.resume.empty() ? o.out : o.resume;
  request.resume = !o.resume.empty();
  request.force = o.force;
  request.report = !o.no_report;
  request.eval_limit = o.eval_limit;
  request.device = parse_device(globals.device);
  if (parallel && request.device.is_cuda())
    request.device = torch::Device(torch::kCUDA, parallel->env().local_rank);
  request.seed = globals.seed;
  request.command_line = globals.command_line;
  install_stop_signals();  // Ctrl-C / SIGTERM: checkpoint at the current step, then stop
  const TrainingOutcome outcome = run_training(request);
  if (parallel && !parallel->is_root()) return;  // rank 0 reports
  if (outcome.stopped) {
    std::printf("stopped at step %lld: continue with `latentforge train --resume %s`\n",
                static_cast<long long>(outcome.steps), outcome.run_dir.c_str());
    return;
  }
  if (!outcome.metrics.is_null()) std::printf("%s\n", outcome.metrics.dump(2).c_str());
  std::string files;
  for (const auto& file : outcome.files) files += (files.empty() ? "" : ", ") + file;
  std::printf("run folder: %s (%s)\n", outcome.run_dir.c_str(), files.c_str());
}

}  // namespace

void register_train(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<TrainCommandOptions>();
  auto* cmd = app.add_subcommand("train", "train a model from a YAML config (see configs/)");
  cmd->add_option("-c,--config", o->config, "YAML config with model:, data:, train: sections");
  cmd->add_option("--set", o->overrides,
                  "override a config value: --set train.steps=500 (repeatable)");
  cmd->add_option("-o,--out", o->out, "run folder (default runs/<config name>)");
  cmd->add_option("--resume", o->resume,
                  "continue the run in this folder from its latest checkpoint");
  cmd->add_flag("--force", o->force, "start over in a run folder that holds a run");
  cmd->add_flag("--no-report", o->no_report, "skip the evaluation and pictures at the end");
  cmd->add_option("--eval-limit", o->eval_limit, "evaluate on the first N test images (0 = all)")
      ->capture_default_str();
  cmd->add_option("--nproc", o->nproc,
                  "data-parallel training in N processes on this machine (without torchrun); "
                  "train.batch_size is the global batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--dist-backend", o->dist_backend,
                  "data-parallel backend: auto (gloo), gloo or nccl")
      ->capture_default_str();
  cmd->add_option("--dist-timeout", o->dist_timeout,
                  "seconds a rank waits for the others (rendezvous, each collective) before it "
                  "stops with an error")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  cmd->callback([o, &globals] { run_train(*o, globals); });
}

}  // namespace lf::cli
