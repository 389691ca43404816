// The blocked nearest-code search against brute force (the full distance matrix in float64),
// including partial blocks, ties and both float types.
#include "models/nearest_code.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model_test_util.h"

namespace lf {
namespace {

// Brute force in float64; rows whose two best codes are closer than `margin` are masked out
// (float32 rounding may legitimately pick either).
std::pair<torch::Tensor, torch::Tensor> reference(const torch::Tensor& x,
                                                  const torch::Tensor& codes, double margin) {
  const auto d = torch::cdist(x.to(torch::kFloat64), codes.to(torch::kFloat64)).pow(2);  // [M, K]
  const auto top = d.topk(std::min<int64_t>(2, d.size(1)), 1, /*largest=*/false);
  const auto values = std::get<0>(top);
  const auto clear = values.size(1) < 2 ? torch::ones({x.size(0)}, torch::kBool)
                                        : (values.select(1, 1) - values.select(1, 0)) > margin;
  return {d.argmin(1), clear};
}

TEST(NearestCode, MatchesBruteForceAcrossBlockShapes) {
  torch::manual_seed(0);
  // K below one lane group, K over one code block with a partial block, rows over one row block.
  for (const auto& [m, k, d] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {37, 5, 3}, {300, 2500, 16}, {513, 64, 8}, {1, 17, 4}}) {
    for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
      const auto x = torch::randn({m, d}, dtype), codes = torch::randn({k, d}, dtype);
      const auto [want, clear] = reference(x, codes, dtype == torch::kFloat32 ? 1e-4 : 1e-10);
      for (int64_t rows : {0, 7}) {
        const auto got = nearest_code(x, codes, rows);
        ASSERT_EQ(got.sizes(), (std::vector<int64_t>{m}));
        ASSERT_EQ(got.scalar_type(), torch::kLong);
        EXPECT_TRUE(got.masked_select(clear).equal(want.masked_select(clear)))
            << "M " << m << " K " << k << " rows " << rows;
        EXPECT_GT(clear.sum().item<int64_t>(), m * 9 / 10);  // the comparison covers most rows
      }
    }
  }
}

TEST(NearestCode, TiesGoToTheLowestIndex) {
  // Small integers: every distance is exact in both float types, and 4100 codes from 5^4 = 625
  // values tie across lanes, code blocks and the tail. argmin returns the first minimum.
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    torch::manual_seed(1);
    const auto x = torch::randint(-3, 4, {200, 4}, dtype);
    const auto codes = torch::randint(-2, 3, {4100, 4}, dtype);
    const auto want = (x.unsqueeze(1) - codes.unsqueeze(0)).pow(2).sum(2).argmin(1);
    EXPECT_TRUE(nearest_code(x, codes).equal(want)) << dtype;
    EXPECT_TRUE(nearest_code(x, codes, 3).equal(want)) << dtype;
  }
}

TEST(NearestCode, RejectsMismatchedShapes) {
  test::expect_error(
      [] {
        nearest_code(torch::zeros({3, 4}), torch::zeros({5, 3}));
      },
      "nearest_code");
  test::expect_error(
      [] {
        nearest_code(torch::zeros({3, 4}), torch::zeros({0, 4}));
      },
      "nearest_code");
  EXPECT_EQ(nearest_code(torch::zeros({0, 4}), torch::zeros({5, 4})).numel(), 0);
}

}  // namespace
}  // namespace lf
