// Run folder lock: flock on <run>/train.lock, shared within the process through a weak registry.
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/error.h"

namespace fs = std::filesystem;

namespace lf {

namespace {
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<RunLock>>& registry() {
  static std::map<std::string, std::weak_ptr<RunLock>> locks;
  return locks;
}
}  // namespace

RunLock::~RunLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

std::shared_ptr<RunLock> lock_run_dir(const std::string& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) fail("train", "{}: cannot create the run folder: {}", run_dir, ec.message());
  const std::string key = fs::weakly_canonical(run_dir, ec).string();
  std::lock_guard<std::mutex> guard(registry_mutex);
  if (auto held = registry()[key].lock()) return held;

  const std::string path = run_dir + "/train.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("train", "{}: cannot open: {}", path, std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    if (err == EWOULDBLOCK)
      fail("train", "{}: another trainer (pid {}) is using this run folder; wait for it or stop it",
           run_dir, pid);
    fail("train", "{}: cannot lock: {}", path, std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; only the message to a second trainer is poorer.
  }
  auto lock = std::shared_ptr<RunLock>(new RunLock(run_dir, fd));
  registry()[key] = lock;
  return lock;
}

}  // namespace lf
