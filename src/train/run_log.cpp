// RunLog: truncation to a step (atomically rewritten), then appends one flushed line per record.
#include "train/run_log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace lf {

RunLog::RunLog(std::string path, int64_t keep_until) : path_(std::move(path)) {
  reopen(keep_until);
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::reopen(int64_t keep_until) {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::string kept;
  std::error_code ec;
  if (keep_until > 0 && std::filesystem::is_regular_file(path_, ec)) {
    std::istringstream in(read_file(path_, "train"));
    std::string line;
    while (std::getline(in, line)) {
      // A line cut by a kill has no valid JSON; records past the checkpoint are redone.
      const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object()) continue;
      if (record.contains("step") && record["step"].is_number_integer() &&
          record["step"].get<int64_t>() > keep_until)
        continue;
      kept += line + "\n";
    }
  }
  write_file_atomic(path_, kept);
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail("train", "{}: cannot open for writing: {}", path_, std::strerror(errno));
}

void RunLog::write(const Json& record) {
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    fail("train", "{}: write failed: {}", path_, std::strerror(errno));
}

}  // namespace lf
