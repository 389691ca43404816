// Raster plots for run folders: training curves (lines) and codebook-usage histograms (bars),
// drawn by PLplot into an RGB image tensor (plot.cpp says why PLplot).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lf {

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_y = false;
  int64_t width = 900;
  int64_t height = 480;
};

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

// -> float [3, height, width] in [-1, 1], ready for save_image
torch::Tensor plot_lines(const std::vector<PlotSeries>& series, const PlotOptions& options);
// values[i] is the bar height of bin i (e.g. how often code i was used)
torch::Tensor plot_bars(const std::vector<double>& values, const PlotOptions& options);

}  // namespace lf
