// The JSONL training log (<run>/log.jsonl): each step's record appears once, across resumes and
// rollbacks, because reopening keeps only the records up to the step training continues from.
#pragma once

#include <cstdio>
#include <string>

#include "io/config.h"

namespace lf {

class RunLog {
 public:
  // Opens `path` for appending, keeping only its records with step <= keep_until (0 starts an
  // empty log); a line torn by a kill is dropped.
  RunLog(std::string path, int64_t keep_until);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void write(const Json& record);  // one line, flushed
  void reopen(int64_t keep_until);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace lf
