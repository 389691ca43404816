// One trainer per run folder: an advisory lock (flock) on <run>/train.lock holding the owner's pid.
// The kernel drops it when the process dies, even by SIGKILL, so a killed run never stays locked.
#pragma once

#include <memory>
#include <string>

namespace lf {

class RunLock {
 public:
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& run_dir() const { return run_dir_; }

 private:
  friend std::shared_ptr<RunLock> lock_run_dir(const std::string& run_dir);
  RunLock(std::string run_dir, int fd) : run_dir_(std::move(run_dir)), fd_(fd) {}
  std::string run_dir_;
  int fd_ = -1;
};

// Locks a run folder (creating it) for this process; refuses with the other owner's pid when a
// live process holds it. Within one process the same folder shares one lock (the CLI takes it
// before writing config.json, the Trainer again for its lifetime).
std::shared_ptr<RunLock> lock_run_dir(const std::string& run_dir);

}  // namespace lf
