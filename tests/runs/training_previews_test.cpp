// Training previews: the fixed batch's reconstructions every N steps and at the end, for the web
// UI's step slider.
#include "runs/training_previews.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "io/image.h"
#include "train/trainer_test_util.h"

namespace lf {
namespace {

TEST(TrainingPreviews, WritesTheFixedBatchEveryNStepsAndAtTheEnd) {
  const auto data = test::blobs(20);
  const std::string dir = test::fresh_dir("previews");
  auto model = std::make_shared<test::TinyAEImpl>();
  TrainingPreviews previews(dir, model, *data, 4, torch::kCPU, 3);
  for (int64_t step = 1; step <= 10; ++step) previews.maybe_write(step, step == 10);
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/previews"))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"step_0000004.png", "step_0000008.png", "step_0000010.png"}));
  const auto grid = load_image(dir + "/previews/step_0000004.png");
  EXPECT_EQ(grid.size(1), 2 + 2 * (8 + 2));  // inputs above, reconstructions below
  EXPECT_EQ(grid.size(2), 2 + 3 * (8 + 2));
  EXPECT_TRUE(model->is_training());  // put back as it was
  TrainOptions o;
  o.steps = 1200;
  o.log_every = 25;
  EXPECT_EQ(o.preview_interval(), 75);  // about 20 previews, on logged steps
  o.preview_every = -1;
  EXPECT_EQ(o.preview_interval(), 0);
}

}  // namespace
}  // namespace lf
