// Training runs started from the web UI: one `latentforge train` child process at a time (the
// same binary), its output kept for the page, stopped with SIGTERM (the trainer writes a checkpoint
// and exits: src/train/stop_request.h) and resumed with `train --resume`. Runs are written into the
// first --models folder; configs come from the --configs folder and are named by file stem only.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lf::serve {

using Json = nlohmann::json;

// Refusals the server answers with 409 (a run is already training) rather than 400.
struct TrainingBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TrainStart {
  std::string config;  // a config's name (file stem in the configs folder)
  std::string name;    // the new run folder's name, [A-Za-z0-9._-]
  int64_t steps = 0;   // 0: the config's
  std::string stage1;  // priors: the first stage's folder (resolved by the caller); "" = config's
  std::string cond_stage;  // sketch priors: the condition's folder; "" = config's
};

class TrainingSupervisor {
 public:
  // binary: this program; runs_root: where new runs go; configs_dir: "" = none offered.
  TrainingSupervisor(std::string binary, std::string runs_root, std::string configs_dir);
  ~TrainingSupervisor();  // stops a running child (SIGTERM, then SIGKILL after a grace period)
  TrainingSupervisor(const TrainingSupervisor&) = delete;
  TrainingSupervisor& operator=(const TrainingSupervisor&) = delete;

  // {configs: [{name, type, steps, needs, comment}]}
  Json configs() const;
  // Starts a run; returns its folder. Throws TrainingBusy when one is running, lf::Error on a bad
  // request (unknown config, bad or taken name).
  std::string start(const TrainStart& request);
  // Continues the run in `run_dir` (a folder under a --models folder).
  void resume(const std::string& run_dir, const std::string& run_id);
  // Asks the running child to stop; false when `run_dir` is not the one training.
  bool stop(const std::string& run_dir);
  // {state: idle|running|stopping, run?, pid?, seconds?, output: [last lines], last_exit?}
  Json status() const;
  // A number that changes whenever status() does (event streams poll it).
  uint64_t version() const;
  // Stops the child (as the destructor) and waits for it.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));

 private:
  void launch(const std::vector<std::string>& args, const std::string& run_dir,
              const std::string& run_id);
  void watch(int output_fd, pid_t pid);
  std::string config_path(const std::string& name) const;

  std::string binary_, runs_root_, configs_dir_;
  mutable std::mutex mutex_;
  pid_t pid_ = -1;
  bool stopping_ = false;
  std::string run_dir_, run_id_;
  std::chrono::steady_clock::time_point started_;
  std::deque<std::string> output_;  // the child's last lines
  Json last_exit_;
  uint64_t version_ = 0;
  std::thread watcher_;
};

}  // namespace lf::serve
