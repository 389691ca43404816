// Terminal progress bar for long work: count, rate, ETA and extra fields (losses). Redraws one line
// on a terminal; prints a plain line every few seconds when stderr is not a terminal (CI logs).
// Written here because Debian ships no C++ progress-bar library.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace lf {

struct ProgressBarOptions {
  std::string label = "";
  std::string unit = "it";
  double plain_interval_s = 5.0;  // seconds between lines when not on a terminal
  int force_tty = -1;             // -1 detect, 0 plain lines, 1 redraw
  std::FILE* stream = stderr;     // nullptr: draws nothing (a data-parallel rank other than 0)
};

class ProgressBar {
 public:
  ProgressBar(int64_t total, ProgressBarOptions options = {});
  ~ProgressBar();

  // Advances by n; `extra` is shown after the rate, e.g. "loss 0.0123".
  void update(int64_t n = 1, const std::string& extra = "");
  void set_position(int64_t position);  // for resumed work: count from here, rate from now
  void finish(const std::string& extra = "");

  // "12.3s", "4m05s", "1h02m"
  static std::string format_duration(double seconds);
  // The line without control characters; public for tests.
  std::string render(double elapsed_s, int width) const;

 private:
  void draw(bool final);

  int64_t total_;
  int64_t position_ = 0;
  int64_t start_position_ = 0;
  ProgressBarOptions options_;
  bool tty_;
  bool finished_ = false;
  std::string extra_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace lf
