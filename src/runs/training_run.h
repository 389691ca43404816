// A whole training run, as `latentforge train` and the library's train() do it: config and
// overrides resolved, the run folder locked and prepared, the model trained (or resumed), its
// final weights saved, and the report (metrics.json and pictures) written.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "distributed/data_parallel.h"
#include "io/config.h"

namespace lf {

struct TrainingRequest {
  std::string config;                  // YAML config (not needed with resume)
  std::vector<std::string> overrides;  // "train.steps=500"
  std::string run_dir;  // default runs/<config name>; with resume the run to continue
  bool resume = false;
  bool force = false;  // start over in a folder that holds a run
  bool report = true;  // evaluate and draw pictures at the end
  int64_t eval_limit = 0;
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;         // unless the config sets seed:
  std::string command_line;  // appended to the run's command.txt
  // One process of a data-parallel run (distributed/data_parallel.h), or nullptr. Rank 0 writes
  // the run folder; every rank trains; only rank 0 saves the final weights and the report.
  DataParallel* parallel = nullptr;
};

struct TrainingOutcome {
  std::string run_dir;
  int64_t steps = 0;
  bool stopped = false;  // a stop was requested (stop_request.h): checkpoint written, no report
  Json metrics;          // null without a report
  std::vector<std::string> files;  // what the run folder now holds for the user to look at
};

TrainingOutcome run_training(const TrainingRequest& request);

}  // namespace lf
