// `latentforge train`: train a model from a YAML config into a run folder, resume it exactly, and
// leave metrics, grids and plots behind (src/runs/training_run.h does the work).
#include <cstdio>

#include "cli.h"
#include "core/runtime.h"
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
};

void run_train(const TrainCommandOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  TrainingRequest request;
  request.config = o.config;
  request.overrides = o.overrides;
  request.run_dir = o.resume.empty() ? o.out : o.resume;
  request.resume = !o.resume.empty();
  request.force = o.force;
  request.report = !o.no_report;
  request.eval_limit = o.eval_limit;
  request.device = parse_device(globals.device);
  request.seed = globals.seed;
  request.command_line = globals.command_line;
  install_stop_signals();  // Ctrl-C / SIGTERM: checkpoint at the current step, then stop
  const TrainingOutcome outcome = run_training(request);
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
  cmd->callback([o, &globals] { run_train(*o, globals); });
}

}  // namespace lf::cli
