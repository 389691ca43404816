// Atomic file output (temp file + fsync + rename) and whole-file reads.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace lf {

namespace {
std::string make_temp_path(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}
}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(make_temp_path(path_)) {
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_) fail("AtomicFile", "cannot open {} for writing: {}", path_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size)
    fail("AtomicFile", "write to {} failed: {}", path_, std::strerror(errno));
}

void AtomicFile::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    fail("AtomicFile", "flush of {} failed: {}", path_, std::strerror(errno));
  std::fclose(file_);
  file_ = nullptr;
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail("AtomicFile", "rename to {} failed: {}", path_, std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

void write_via_temp(const std::string& path,
                    const std::function<void(const std::string&)>& writer) {
  const std::string temp = make_temp_path(path);
  try {
    writer(temp);
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    fail("write_via_temp", "rename to {} failed: {}", path, std::strerror(errno));
  }
}

std::string read_file(const std::string& path, const char* where) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(where, "{}: no such file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(where, "{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lf
