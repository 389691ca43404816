// Sliding-window sampling: windows are centred and inside the grid, and the model is only ever
// shown cells that were generated before the one it predicts.
#include <gtest/gtest.h>

#include "priors/sliding_window.h"

namespace lf {
namespace {

TEST(SlidingWindow, IsCentredAsFarAsTheBordersAllow) {
  const Window middle = window_around(5, 7, 10, 14, 4, 6);
  EXPECT_EQ(middle.top, 3);
  EXPECT_EQ(middle.left, 4);
  EXPECT_EQ(middle.row, 2);
  EXPECT_EQ(middle.col, 3);
  const Window corner = window_around(0, 13, 10, 14, 4, 6);
  EXPECT_EQ(corner.top, 0);
  EXPECT_EQ(corner.left, 8);
  EXPECT_EQ(corner.col, 5);
  const Window bottom = window_around(9, 0, 10, 14, 4, 6);
  EXPECT_EQ(bottom.top, 6);
  EXPECT_EQ(bottom.row, 3);
  EXPECT_EQ(bottom.target(), 3 * 6);
}

// For every grid shape and window: the context handed to the model is exactly the window's cells
// before the target, each of them generated earlier (checked against a shadow of the draws).
TEST(SlidingWindow, NeverReadsAnUngeneratedPosition) {
  const int64_t vocab = 13;
  for (const auto& [h, w, wh, ww] : std::vector<std::array<int64_t, 4>>{
           {7, 14, 7, 7}, {14, 7, 7, 7}, {5, 9, 3, 4}, {4, 4, 4, 4}, {6, 11, 1, 1}}) {
    const int64_t n = 3;
    auto shadow = torch::full({n, h, w}, -1, torch::kInt64);  // what has been drawn so far
    int64_t calls = 0;
    const WindowLogits model = [&](const torch::Tensor& context, const Window& win) {
      const int64_t i = calls / w, j = calls % w;  // raster order
      ++calls;
      EXPECT_EQ(context.size(1), win.target());
      EXPECT_EQ(win.top + win.row, i);
      EXPECT_EQ(win.left + win.col, j);
      for (int64_t t = 0; t < context.size(1); ++t) {
        const int64_t r = win.top + t / win.width, c = win.left + t % win.width;
        EXPECT_TRUE(r < i || (r == i && c < j))
            << "cell (" << r << "," << c << ") read for (" << i << "," << j << ")";
        EXPECT_TRUE(torch::equal(context.select(1, t), shadow.select(1, r).select(1, c)));
        EXPECT_GE(shadow.select(1, r).select(1, c).min().item<int64_t>(), 0);
      }
      // A deterministic "model": one token, a function of the context.
      const auto token = (context.sum(1) + 3 * i + j).remainder(vocab);
      shadow.select(1, i).select(1, j).copy_(token);
      return torch::one_hot(token, vocab).to(torch::kFloat32) * 100;
    };
    SamplingOptions greedy;
    greedy.top_k = 1;
    auto generator = make_generator(0);
    const auto grid = sample_with_window(n, h, w, wh, ww, model, greedy, generator, torch::kCPU);
    EXPECT_EQ(calls, h * w);
    EXPECT_TRUE(torch::equal(grid, shadow));
  }
}

}  // namespace
}  // namespace lf
