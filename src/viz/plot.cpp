// Line and bar plots for plot.h, drawn by PLplot into memory. PLplot (Debian's libplplot-dev, with
// the cairo driver from plplot-driver-cairo) is the well-kept plotting library in Debian with a C
// API that renders without a display: "nice" axis ticks, log axes, legends and antialiased text.
#include "viz/plot.h"

#include <plplot/plplot.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace lf {

namespace {

constexpr const char* kPlot = "plot";
constexpr int kInk = 1;          // cmap0 index of axes and text
constexpr int kFirstSeries = 2;  // cmap0 indices of the series colours
const int kPalette[][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                           {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};
constexpr int kColors = 8;
// Margins around the plot area, in pixels.
constexpr double kLeft = 80, kRight = 20, kTop = 40, kBottom = 50;

void check_size(const PlotOptions& o) {
  if (o.width < 200 || o.height < 150 || o.width > 8192 || o.height > 8192)
    fail(kPlot, "size {}x{}: expected 200..8192 x 150..8192", o.width, o.height);
}

// PLplot keeps one global state: one plot at a time in the process.
std::mutex& plplot_mutex() {
  static std::mutex m;
  return m;
}

// The memcairo device must be there (plinit would otherwise ask on stdin for another one).
void require_memcairo() {
  const char** menus = nullptr;
  const char** names = nullptr;
  int n = 64;
  std::vector<const char*> menu_storage(n), name_storage(n);
  menus = menu_storage.data();
  names = name_storage.data();
  plgDevs(&menus, &names, &n);
  for (int i = 0; i < n; ++i)
    if (names[i] && std::strcmp(names[i], "memcairo") == 0) return;
  fail(kPlot,
       "PLplot's memcairo device is not installed (Debian: plplot-driver-cairo; "
       "scripts/setup.sh installs it)");
}

// Runs `draw` on a fresh PLplot page of the options' size, with the axes of [x0, x1] x [y0, y1]
// (y in log10 units when log_y) drawn, and returns the page as float [3, H, W] in [-1, 1].
template <typename Draw>
torch::Tensor render(const PlotOptions& o, double x0, double x1, double y0, double y1,
                     const Draw& draw) {
  std::lock_guard<std::mutex> lock(plplot_mutex());
  require_memcairo();
  std::vector<uint8_t> rgba(static_cast<size_t>(o.width * o.height * 4), 255);
  plsdev("memcairo");
  plsmema(static_cast<PLINT>(o.width), static_cast<PLINT>(o.height), rgba.data());
  plscolbg(255, 255, 255);
  plinit();
  plscol0(kInk, 0, 0, 0);
  for (int i = 0; i < kColors; ++i)
    plscol0(kFirstSeries + i, kPalette[i][0], kPalette[i][1], kPalette[i][2]);
  pladv(0);
  const double w = static_cast<double>(o.width), h = static_cast<double>(o.height);
  plvpor(kLeft / w, 1 - kRight / w, kBottom / h, 1 - kTop / h);
  plwind(x0, x1, y0, y1);
  plcol0(kInk);
  plschr(0, 0.9);
  // Light grid, then the box with numeric labels ("l": log axis labelled as powers of ten).
  plscol0(15, 225, 225, 225);
  plcol0(15);
  plbox("g", 0, 0, o.log_y ? "gl" : "g", 0, 0);
  plcol0(kInk);
  plbox("bcnst", 0, 0, o.log_y ? "bcnstvl" : "bcnstv", 0, 0);
  pllab(o.x_label.c_str(), o.y_label.c_str(), o.title.c_str());
  draw();
  plend();
  // rgba: [H, W, 4] bytes -> [3, H, W] in [-1, 1]
  const auto pixels = torch::from_blob(rgba.data(), {o.height, o.width, 4}, torch::kUInt8);
  return pixels.narrow(2, 0, 3).permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0);
}

}  // namespace

torch::Tensor plot_lines(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  check_size(options);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size())
      fail(kPlot, "series '{}': {} x values but {} y values", s.name, s.x.size(), s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (options.log_y && s.y[i] <= 0))
        continue;
      const double y = options.log_y ? std::log10(s.y[i]) : s.y[i];
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.04;
  return render(options, x0, x1, y0 - pad, y1 + pad, [&] {
    plwidth(2);
    std::vector<PLINT> opts, colors, styles;
    std::vector<PLFLT> widths;
    std::vector<const char*> names;
    for (size_t k = 0; k < series.size(); ++k) {
      const auto& s = series[k];
      const int color = kFirstSeries + static_cast<int>(k % kColors);
      plcol0(color);
      // Runs of plottable points: a NaN, Inf or (log axis) non-positive value breaks the line.
      std::vector<PLFLT> xs, ys;
      const auto flush = [&] {
        if (xs.size() >= 2) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
        if (xs.size() == 1) plstring(1, xs.data(), ys.data(), ".");
        xs.clear(), ys.clear();
      };
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (options.log_y && s.y[i] <= 0)) {
          flush();
          continue;
        }
        xs.push_back(s.x[i]);
        ys.push_back(options.log_y ? std::log10(s.y[i]) : s.y[i]);
      }
      flush();
      opts.push_back(PL_LEGEND_LINE);
      colors.push_back(color);
      styles.push_back(1);
      widths.push_back(2);
      names.push_back(s.name.c_str());
    }
    plwidth(1);
    if (series.empty()) return;
    const std::vector<PLINT> text_colors(series.size(), kInk);
    PLFLT legend_w = 0, legend_h = 0;
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.02, 0.08, 0, kInk, 1,
             0, 0, static_cast<PLINT>(series.size()), opts.data(), 1.0, 0.9, 1.8, 0.0,
             text_colors.data(), names.data(), nullptr, nullptr, nullptr, nullptr, colors.data(),
             styles.data(), widths.data(), nullptr, nullptr, nullptr, nullptr);
  });
}

torch::Tensor plot_bars(const std::vector<double>& values, const PlotOptions& options) {
  check_size(options);
  double top = 0;
  for (double v : values) top = std::max(top, std::isfinite(v) ? v : 0.0);
  PlotOptions o = options;
  o.log_y = false;
  const double n = static_cast<double>(std::max<size_t>(1, values.size()));
  return render(o, 0, n, 0, top > 0 ? top * 1.05 : 1, [&] {
    plcol0(kFirstSeries);
    // Bars one unit wide; a thin gap when they are wide enough on the page to show one.
    const double bar_px = (static_cast<double>(o.width) - kLeft - kRight) / n;
    const double gap = bar_px > 3 ? 1.0 / bar_px : 0.0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!(values[i] > 0) || !std::isfinite(values[i])) continue;
      const double a = static_cast<double>(i), b = a + 1 - gap;
      PLFLT xs[4] = {a, b, b, a}, ys[4] = {0, 0, values[i], values[i]};
      plfill(4, xs, ys);
    }
  });
}

}  // namespace lf
