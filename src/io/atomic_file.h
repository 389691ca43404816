// Atomic file output: everything is written to "<path>.tmp-<pid>" and renamed over <path> only
// when complete, so a failure never leaves a half-written output file behind.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace lf {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // opens the temp file; throws lf::Error on failure
  ~AtomicFile();                          // removes the temp file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();  // flush, fsync, rename over the final path

  const std::string& temp_path() const { return temp_path_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Writes the whole content atomically.
void write_file_atomic(const std::string& path, std::string_view content);
// Lets a writer that only takes a path (stb, torch::save) produce the temp file, then renames.
void write_via_temp(const std::string& path, const std::function<void(const std::string&)>& writer);
// Reads a whole file; throws lf::Error naming the file when missing or unreadable.
std::string read_file(const std::string& path, const char* where = "read_file");

}  // namespace lf
