// Raster canvas, axes, lines, bars and text for plot.h.
#include "viz/plot.h"

#include <stb/stb_easy_font.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace lf {

namespace {

struct Rgb {
  uint8_t r, g, b;
};

const Rgb kPalette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                        {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};

class Canvas {
 public:
  Canvas(int64_t w, int64_t h) : w_(w), h_(h), pixels_(torch::full({h, w, 3}, 255, torch::kUInt8)) {
    data_ = pixels_.data_ptr<uint8_t>();
  }
  void set(int64_t x, int64_t y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = data_ + (y * w_ + x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void rect(double x0, double y0, double x1, double y1, Rgb c) {
    for (int64_t y = std::lround(std::min(y0, y1)); y <= std::lround(std::max(y0, y1)); ++y)
      for (int64_t x = std::lround(std::min(x0, x1)); x <= std::lround(std::max(x0, x1)); ++x)
        set(x, y, c);
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1) {
    const double steps = std::max({std::abs(x1 - x0), std::abs(y1 - y0), 1.0});
    for (int i = 0; i <= steps; ++i) {
      const double t = i / steps, x = x0 + (x1 - x0) * t, y = y0 + (y1 - y0) * t;
      for (int d = 0; d < thickness; ++d)
        set(std::lround(x), std::lround(y) + d - thickness / 2, c);
    }
  }
  // stb_easy_font draws ~6 px wide glyphs on a 1-unit grid; scale 2 for readability.
  void text(double x, double y, const std::string& s, Rgb c = {0, 0, 0}, double scale = 1.5) {
    std::vector<char> buffer(s.size() * 270 + 64);
    std::string copy = s;
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(),
                                          static_cast<int>(buffer.size()));
    const float* v = reinterpret_cast<const float*>(buffer.data());
    for (int q = 0; q < quads; ++q) {
      const float* quad = v + q * 16;  // 4 vertices of (x, y, z, color)
      rect(x + quad[0] * scale, y + quad[1] * scale, x + quad[8] * scale - 1,
           y + quad[9] * scale - 1, c);
    }
  }
  static double text_width(const std::string& s, double scale = 1.5) {
    std::string copy = s;
    return stb_easy_font_width(copy.data()) * scale;
  }
  torch::Tensor tensor() const {
    return pixels_.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0);
  }

 private:
  int64_t w_, h_;
  torch::Tensor pixels_;
  uint8_t* data_;
};

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e4 || a < 1e-2) return fmt::format("{:.1e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 1) return fmt::format("{:.2g}", v);
  return fmt::format("{:.3g}", v);
}

struct Frame {
  double left = 80, right = 20, top = 40, bottom = 50;
};

// Draws the frame, title, labels and ticks; returns a mapping of data to pixels.
struct Axes {
  double x0, x1, y0, y1;  // data range
  double px0, px1, py0, py1;
  bool log_y;
  double map_x(double x) const { return px0 + (x - x0) / (x1 - x0) * (px1 - px0); }
  double map_y(double y) const {
    const double v = log_y ? std::log10(std::max(y, 1e-30)) : y;
    return py1 - (v - y0) / (y1 - y0) * (py1 - py0);
  }
};

Axes draw_axes(Canvas& canvas, const PlotOptions& o, double x0, double x1, double y0, double y1) {
  const Frame f;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1);
  Axes a{x0,     x1, y0, y1, f.left, double(o.width) - f.right, f.top, double(o.height) - f.bottom,
         o.log_y};
  const Rgb grid{225, 225, 225}, ink{0, 0, 0};
  for (int i = 0; i <= 5; ++i) {
    const double v = y0 + (y1 - y0) * i / 5, py = a.py1 - (a.py1 - a.py0) * i / 5;
    canvas.line(a.px0, py, a.px1, py, grid);
    const std::string label = tick_label(o.log_y ? std::pow(10.0, v) : v);
    canvas.text(a.px0 - 6 - Canvas::text_width(label), py - 5, label);
    const double xv = x0 + (x1 - x0) * i / 5, px = a.px0 + (a.px1 - a.px0) * i / 5;
    canvas.line(px, a.py0, px, a.py1, grid);
    const std::string xlabel = tick_label(xv);
    canvas.text(px - Canvas::text_width(xlabel) / 2, a.py1 + 8, xlabel);
  }
  canvas.line(a.px0, a.py1, a.px1, a.py1, ink);
  canvas.line(a.px0, a.py0, a.px0, a.py1, ink);
  canvas.text((o.width - Canvas::text_width(o.title, 2.0)) / 2, 12, o.title, ink, 2.0);
  canvas.text((a.px0 + a.px1 - Canvas::text_width(o.x_label)) / 2, o.height - 22, o.x_label);
  canvas.text(8, 20, o.y_label);
  return a;
}

void check_size(const PlotOptions& o) {
  if (o.width < 200 || o.height < 150 || o.width > 8192 || o.height > 8192)
    fail("plot", "size {}x{}: expected 200..8192 x 150..8192", o.width, o.height);
}

}  // namespace

torch::Tensor plot_lines(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  check_size(options);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size())
      fail("plot", "series '{}': {} x values but {} y values", s.name, s.x.size(), s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (options.log_y && s.y[i] <= 0)) continue;
      const double y = options.log_y ? std::log10(s.y[i]) : s.y[i];
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, y),
      y1 = std::max(y1, y);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  Canvas canvas(options.width, options.height);
  const Axes axes = draw_axes(canvas, options, x0, x1, y0, y1);
  for (size_t k = 0; k < series.size(); ++k) {
    const Rgb color = kPalette[k % 8];
    const auto& s = series[k];
    bool have_prev = false;
    double px = 0, py = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (options.log_y && s.y[i] <= 0)) {
        have_prev = false;
        continue;
      }
      const double nx = axes.map_x(s.x[i]), ny = axes.map_y(s.y[i]);
      if (have_prev) canvas.line(px, py, nx, ny, color, 2);
      px = nx, py = ny, have_prev = true;
    }
    const double ly = axes.py0 + 8 + 16 * k;
    canvas.rect(axes.px1 - 160, ly + 3, axes.px1 - 140, ly + 5, color);
    canvas.text(axes.px1 - 132, ly - 2, s.name);
  }
  return canvas.tensor();
}

torch::Tensor plot_bars(const std::vector<double>& values, const PlotOptions& options) {
  check_size(options);
  double top = 0;
  for (double v : values) top = std::max(top, std::isfinite(v) ? v : 0.0);
  Canvas canvas(options.width, options.height);
  PlotOptions o = options;
  o.log_y = false;
  const Axes axes =
      draw_axes(canvas, o, 0, std::max<double>(1, values.size()), 0, top > 0 ? top * 1.05 : 1);
  const double bar = (axes.px1 - axes.px0) / std::max<size_t>(1, values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (!(values[i] > 0)) continue;
    const double x = axes.px0 + i * bar;
    canvas.rect(x, axes.map_y(values[i]), x + std::max(0.0, bar - (bar > 3 ? 1 : 0)) - 0.5,
                axes.py1 - 1, kPalette[0]);
  }
  return canvas.tensor();
}

}  // namespace lf
