// Tiled application: exact for position-wise networks, seamless blending for real ones, and clear
// errors for tile sizes that do not fit the network's factor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model_test_util.h"
#include "models/tiling.h"

namespace lf {
namespace {

namespace F = torch::nn::functional;

TEST(Tiling, PositionwiseFunctionsAreReproducedExactly) {
  const auto x = torch::randn({2, 3, 37, 50});
  const auto fn = [](const torch::Tensor& t) { return t * 2 + 1; };
  for (auto [tile, overlap] : {std::pair<int64_t, int64_t>{16, 4}, {8, 0}, {20, 19}, {64, 8}}) {
    const auto y = tiled_apply(fn, x, {tile, overlap}, 1, 1);
    EXPECT_LE((y - fn(x)).abs().max().item<double>(), 1e-5) << tile << "/" << overlap;
  }
}

TEST(Tiling, UpAndDownScalingKeepsAlignment) {
  // Decoder-like (nearest x4) and encoder-like (4x4 average pooling) functions are local and
  // tile-exact when tiles are aligned to the factor.
  const auto up = [](const torch::Tensor& t) {
    return F::interpolate(
        t,
        F::InterpolateFuncOptions().scale_factor(std::vector<double>{4, 4}).mode(torch::kNearest));
  };
  const auto down = [](const torch::Tensor& t) {
    return F::avg_pool2d(t, F::AvgPool2dFuncOptions(4));
  };
  const auto z = torch::randn({1, 2, 9, 13});
  EXPECT_LE((tiled_apply(up, z, {4, 2}, 4, 1) - up(z)).abs().max().item<double>(), 1e-5);
  const auto x = torch::randn({1, 2, 36, 52});
  EXPECT_LE((tiled_apply(down, x, {16, 8}, 1, 4) - down(x)).abs().max().item<double>(), 1e-5);
}

TEST(Tiling, BlendingHidesTheSeamsOfAContextDependentFunction) {
  // A 9x9 blur sees 4 pixels beyond each tile edge: without overlap the tile borders are visible,
  // with an overlap of twice the receptive field the output is close to the untiled one.
  const auto blur = [](const torch::Tensor& t) {
    return F::conv2d(t, torch::ones({1, 1, 9, 9}) / 81.0, F::Conv2dFuncOptions().padding(4));
  };
  const auto x = torch::rand({1, 1, 96, 96});
  const auto full = blur(x);
  const double hard = (tiled_apply(blur, x, {32, 0}, 1, 1) - full).abs().max().item<double>();
  const double soft = (tiled_apply(blur, x, {32, 16}, 1, 1) - full).abs().max().item<double>();
  EXPECT_GT(hard, 0.05);
  EXPECT_LT(soft, hard / 2);
}

TEST(Tiling, RejectsMisalignedTiles) {
  const auto x = torch::randn({1, 1, 32, 32});
  const auto id = [](const torch::Tensor& t) { return t; };
  test::expect_error([&] { tiled_apply(id, x, {10, 2}, 1, 4); }, "multiple of 4");
  test::expect_error([&] { tiled_apply(id, x, {16, 16}, 1, 1); }, "overlap < tile");
  const auto shrink = [](const torch::Tensor& t) { return t.narrow(2, 0, t.size(2) - 1); };
  test::expect_error([&] { tiled_apply(shrink, x, {16, 4}, 1, 1); }, "tile output");
}

}  // namespace
}  // namespace lf
