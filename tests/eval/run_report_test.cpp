// Run report pictures: small images are enlarged by whole factors, nearest neighbour, for viewing.
#include "eval/run_report.h"

#include <gtest/gtest.h>

namespace lf {
namespace {

TEST(RunReport, SmallImagesAreEnlargedNearestNeighbour) {
  const auto x = torch::rand({2, 1, 28, 20}) * 2 - 1;
  const auto big = enlarged_for_viewing(x);
  EXPECT_EQ(big.sizes(), (std::vector<int64_t>{2, 1, 112, 80}));  // 4x: at least 96 px high
  // Every 4x4 block is one source pixel.
  EXPECT_TRUE(big.index({torch::indexing::Slice(), torch::indexing::Slice(),
                         torch::indexing::Slice(0, torch::indexing::None, 4),
                         torch::indexing::Slice(3, torch::indexing::None, 4)})
                  .equal(x));
  const auto large = torch::zeros({1, 3, 128, 128});
  EXPECT_TRUE(enlarged_for_viewing(large).equal(large));  // already large enough: unchanged
}

}  // namespace
}  // namespace lf
