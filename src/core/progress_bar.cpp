// Progress bar rendering (see progress_bar.h).
#include "core/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace lf {

namespace {
int terminal_width(std::FILE* stream) {
  winsize ws{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 100;
}
}  // namespace

ProgressBar::ProgressBar(int64_t total, ProgressBarOptions options)
    : total_(total), options_(std::move(options)) {
  tty_ = options_.stream && (options_.force_tty >= 0 ? options_.force_tty == 1
                                                     : ::isatty(::fileno(options_.stream)) == 1);
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() {
  if (!finished_ && tty_) std::fputc('\n', options_.stream);
}

std::string ProgressBar::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto total = static_cast<int64_t>(s);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

std::string ProgressBar::render(double elapsed_s, int width) const {
  const double done = static_cast<double>(position_ - start_position_);
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  const double remaining = rate > 0 && total_ > 0 ? (total_ - position_) / rate : NAN;
  std::string head = options_.label.empty() ? "" : options_.label + " ";
  std::string tail =
      total_ > 0 ? fmt::format(" {}/{}", position_, total_) : fmt::format(" {}", position_);
  tail += fmt::format(" [{}<{}, {:.1f} {}/s]", format_duration(elapsed_s),
                      format_duration(remaining), rate, options_.unit);
  if (!extra_.empty()) tail += " " + extra_;
  if (total_ <= 0) return head + tail.substr(1);
  const double fraction = std::clamp(static_cast<double>(position_) / total_, 0.0, 1.0);
  std::string percent = fmt::format("{:3.0f}%", fraction * 100);
  const int bar_width =
      std::max(10, width - static_cast<int>(head.size() + percent.size() + tail.size()) - 3);
  const int filled = static_cast<int>(fraction * bar_width);
  return head + percent + " |" + std::string(filled, '#') + std::string(bar_width - filled, '.') +
         "|" + tail;
}

void ProgressBar::draw(bool final) {
  if (!options_.stream) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (!final) {
    if (tty_ && since_draw < 0.1) return;
    if (!tty_ && since_draw < options_.plain_interval_s) return;
  }
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    const std::string line = render(elapsed, terminal_width(options_.stream) - 1);
    std::fprintf(options_.stream, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(options_.stream, "%s\n", render(elapsed, 60).c_str());
  }
  std::fflush(options_.stream);
}

void ProgressBar::update(int64_t n, const std::string& extra) {
  position_ += n;
  if (!extra.empty()) extra_ = extra;
  draw(false);
}

void ProgressBar::set_position(int64_t position) {
  position_ = start_position_ = position;
  start_ = std::chrono::steady_clock::now();
}

void ProgressBar::finish(const std::string& extra) {
  if (finished_ || !options_.stream) return;
  if (!extra.empty()) extra_ = extra;
  draw(true);
  finished_ = true;
}

}  // namespace lf
