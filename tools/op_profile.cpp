#include "op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace lf {

void print_op_profile(const std::function<void()>& work, int64_t steps, int top, std::FILE* out) {
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  const auto t0 = std::chrono::steady_clock::now();
  prof::enableProfilerLegacy(ProfilerConfig(ProfilerState::CPU));
  work();
  const auto lists = prof::disableProfilerLegacy();
  const double wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();

  struct Totals {
    double self_us = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Totals> by_name;
  for (const auto& list : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double children_us = 0;
    };
    std::vector<Open> stack;
    for (const auto& event : list) {
      if (event.kind() == prof::EventKind::PushRange) {
        stack.push_back({&event});
      } else if (event.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double us = open.push->cpuElapsedUs(event);
        auto& totals = by_name[open.push->name()];
        totals.self_us += us - open.children_us;
        ++totals.calls;
        if (!stack.empty()) stack.back().children_us += us;
      }
    }
  }
  std::vector<std::pair<std::string, Totals>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  const double per_step = 1e-3 / static_cast<double>(std::max<int64_t>(steps, 1));
  std::fprintf(out, "| op | self ms/step | share of wall | calls/step |\n|---|---|---|---|\n");
  double shown = 0;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(top); ++i) {
    const auto& [name, t] = rows[i];
    shown += t.self_us;
    std::fprintf(out, "| %s | %.2f | %.1f%% | %.1f |\n", name.c_str(), t.self_us * per_step,
                 100.0 * t.self_us / wall_us,
                 static_cast<double>(t.calls) / static_cast<double>(std::max<int64_t>(steps, 1)));
  }
  std::fprintf(out, "| (the %d ops above) | %.2f | %.1f%% | |\n| (wall) | %.2f | 100%% | |\n",
               std::min<int>(top, static_cast<int>(rows.size())), shown * per_step,
               100.0 * shown / wall_us, wall_us * per_step);
}

}  // namespace lf
