// Edge maps: the outline of a shape, in {-1, 1}, served by the dataset wrapper with the labels.
#include <gtest/gtest.h>

#include "data/edge_map.h"

namespace lf {
namespace {

// A stand-in dataset of one white square on black, labelled 3.
class SquareDataset : public Dataset {
 public:
  int64_t size() const override { return 2; }
  std::vector<int64_t> image_shape() const override { return {3, 12, 12}; }
  torch::Tensor get_image(int64_t) const override {
    auto x = torch::full({3, 12, 12}, -1.0f);
    x.slice(1, 3, 9).slice(2, 3, 9).fill_(1.0f);
    return x;
  }
  int64_t get_label(int64_t) const override { return 3; }
  std::string describe() const override { return "squares"; }
};

TEST(EdgeMap, OutlinesShapesAndLeavesFlatRegionsBlack) {
  const auto square = SquareDataset().get_image(0).unsqueeze(0);
  const auto edges = edge_map(square);
  EXPECT_EQ(edges.sizes(), (std::vector<int64_t>{1, 1, 12, 12}));
  EXPECT_TRUE(((edges == 1) | (edges == -1)).all().item<bool>());
  EXPECT_EQ(edges[0][0][0][0].item<float>(), -1);  // flat background
  EXPECT_EQ(edges[0][0][5][5].item<float>(), -1);  // flat inside
  EXPECT_EQ(edges[0][0][3][5].item<float>(), 1);   // the square's border
  EXPECT_EQ(edges[0][0][8][5].item<float>(), 1);
  EXPECT_EQ(edges[0][0][5][2].item<float>(), 1);
  EXPECT_TRUE(torch::equal(edge_map(torch::zeros({2, 1, 8, 8})), -torch::ones({2, 1, 8, 8})));
}

TEST(EdgeMap, DatasetServesEdgeMapsWithTheLabels) {
  const EdgeMapDataset edges(std::make_shared<SquareDataset>());
  EXPECT_EQ(edges.image_shape(), (std::vector<int64_t>{1, 12, 12}));
  const Batch batch = edges.get_batch({0, 1});
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{2, 1, 12, 12}));
  EXPECT_TRUE(torch::equal(batch.images[0], edges.get_image(0)));
  EXPECT_EQ(batch.labels[1].item<int64_t>(), 3);
}

}  // namespace
}  // namespace lf
