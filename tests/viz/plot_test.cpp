// Plots: sizes, that lines and bars put ink where the data says.
#include "viz/plot.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lf {
namespace {

TEST(Plot, LinesHaveTheRequestedSizeAndInk) {
  PlotOptions options;
  options.title = "losses";
  PlotSeries s{"loss", {0, 1, 2, 3}, {4, 3, 2, 1}};
  const auto image = plot_lines({s}, options);
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{3, 480, 900}));
  // The series colour (blue-ish: R < G < B) appears somewhere.
  const auto blue = (image[2] > image[0] + 0.5).sum().item<int64_t>();
  EXPECT_GT(blue, 100);
  options.log_y = true;
  EXPECT_NO_THROW(
      plot_lines({s, PlotSeries{"zeros", {0, 1}, {0, 0}}}, options));  // non-positive skipped
}

TEST(Plot, BarsGrowWithTheirValue) {
  PlotOptions options;
  options.width = 400;
  options.height = 300;
  const auto image = plot_bars({1, 0, 4, 0}, options);
  const auto ink = (image[2] > image[0] + 0.5).to(torch::kInt64);  // bar colour per pixel
  // Four bars across the plot area (x from 80 to 380): column sums of the 1st and 3rd bars.
  const auto first = ink.narrow(1, 100, 20).sum().item<int64_t>();
  const auto second = ink.narrow(1, 175, 20).sum().item<int64_t>();
  const auto third = ink.narrow(1, 250, 20).sum().item<int64_t>();
  EXPECT_GT(first, 0);
  EXPECT_EQ(second, 0);
  EXPECT_NEAR(double(third) / first, 4.0, 0.3);
}

TEST(Plot, BadInputIsAClearError) {
  PlotOptions options;
  EXPECT_THROW(plot_lines({PlotSeries{"bad", {0, 1}, {1}}}, options), Error);
  options.width = 10;
  EXPECT_THROW(plot_bars({1, 2}, options), Error);
}

}  // namespace
}  // namespace lf
