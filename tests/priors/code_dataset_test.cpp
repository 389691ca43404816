// Code datasets: batches of code maps, labels and condition codes; no images.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "priors/code_dataset.h"

namespace lf {
namespace {

TEST(CodeDataset, BatchesCarryCodesLabelsAndConditions) {
  const auto codes = torch::randint(256, {10, 7, 7});
  const auto cond = torch::randint(64, {10, 7, 7});
  const CodeDataset data(codes, torch::arange(10) % 3, cond, 3, "toy codes");
  EXPECT_EQ(data.size(), 10);
  EXPECT_EQ(data.image_shape(), (std::vector<int64_t>{1, 7, 7}));
  const Batch batch = data.get_batch({4, 1});
  EXPECT_TRUE(torch::equal(batch.codes[0], codes[4]));
  EXPECT_TRUE(torch::equal(batch.cond_codes[1], cond[1]));
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 1);
  EXPECT_EQ(batch.size(), 2);
  EXPECT_FALSE(batch.images.defined());
  test::expect_error([&] { data.get_image(0); }, "code maps, not images");
  test::expect_error([&] { data.get_batch({10}); }, "out of range");
  test::expect_error([&] { CodeDataset(codes, torch::arange(9), {}, 3, "x"); }, "labels");
  test::expect_error([&] { CodeDataset(codes.to(torch::kFloat32), torch::arange(10), {}, 3, "x"); },
                     "int64");
}

}  // namespace
}  // namespace lf
