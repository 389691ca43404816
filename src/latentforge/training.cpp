// latentforge::train: the public face of a whole training run (src/runs/training_run.h).
#include "latentforge/api_errors.h"
#include "latentforge/latentforge.hpp"
#include "runs/training_run.h"

namespace latentforge {

TrainResult train(const std::string& config_yaml, const std::string& run_dir,
                  const TrainOptions& options) {
  if (options.resume) {
    detail::require_path("train", "run_dir", run_dir);
  } else {
    detail::require_path("train", "config", config_yaml);
    if (run_dir.empty()) detail::fail(ErrorCode::invalid_argument, "[train] run_dir: empty path");
  }
  if (options.eval_limit < 0)
    detail::fail(ErrorCode::invalid_argument,
                 fmt::format("[train] eval_limit: expected >= 0, got {}", options.eval_limit));
  detail::apply_runtime_defaults();
  lf::TrainingRequest request;
  request.config = config_yaml;
  request.overrides = options.overrides;
  request.run_dir = run_dir;
  request.resume = options.resume;
  request.force = options.force;
  request.report = options.report;
  request.eval_limit = options.eval_limit;
  request.seed = options.seed;
  request.command_line = "latentforge::train(" + (options.resume ? run_dir : config_yaml) + ")";
  return detail::guarded("train", [&] {
    request.device = lf::parse_device(options.device.empty() ? "cpu" : options.device);
    const auto outcome = lf::run_training(request);
    TrainResult result;
    result.run_dir = outcome.run_dir;
    result.steps = outcome.steps;
    if (!outcome.metrics.is_null()) result.metrics_json = outcome.metrics.dump(2);
    return result;
  });
}

}  // namespace latentforge
