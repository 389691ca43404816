// Data loader: epoch coverage, determinism, exact resume, workers == synchronous, errors.
#include "data/data_loader.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "data/idx_dataset.h"

namespace lf {
namespace {

DatasetPtr tiny_dataset(int64_t n) {
  auto images = torch::arange(n, torch::kInt64)
                    .remainder(256)
                    .to(torch::kUInt8)
                    .view({n, 1, 1, 1})
                    .expand({n, 1, 2, 2})
                    .contiguous();
  auto labels = torch::arange(n, torch::kInt64).remainder(10);
  return std::make_shared<IdxDataset>(images, labels, "tiny");
}

TEST(DataLoader, EachEpochVisitsEveryItemOnce) {
  DataLoaderOptions options;
  options.batch_size = 10;
  options.num_workers = 0;
  DataLoader loader(tiny_dataset(100), options);
  ASSERT_EQ(loader.batches_per_epoch(), 10);
  std::set<int64_t> seen;
  for (int b = 0; b < 10; ++b) {
    const auto batch = loader.next();
    for (int64_t i = 0; i < batch.indices.size(0); ++i)
      seen.insert(batch.indices[i].item<int64_t>());
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(loader.position().epoch, 1);
  EXPECT_EQ(loader.position().batch, 0);
}

TEST(DataLoader, EpochsAreShuffledDifferentlyAndRepeatably) {
  DataLoaderOptions options;
  options.batch_size = 100;
  options.num_workers = 0;
  DataLoader a(tiny_dataset(100), options), b(tiny_dataset(100), options);
  const auto e0 = a.next().indices, e1 = a.next().indices;
  EXPECT_FALSE(torch::equal(e0, e1));
  EXPECT_FALSE(torch::equal(e0, torch::arange(100)));
  EXPECT_TRUE(torch::equal(e0, b.next().indices));
  options.seed = 1;
  DataLoader c(tiny_dataset(100), options);
  EXPECT_FALSE(torch::equal(e0, c.next().indices));
}

TEST(DataLoader, ResumeFromPositionGivesTheSameBatches) {
  DataLoaderOptions options;
  options.batch_size = 7;
  options.num_workers = 0;
  DataLoader full(tiny_dataset(50), options);  // 7 batches per epoch, drop_last
  std::vector<torch::Tensor> expected;
  LoaderPosition saved;
  for (int i = 0; i < 20; ++i) {
    if (i == 11) saved = full.position();
    expected.push_back(full.next().indices);
  }
  EXPECT_EQ(saved.epoch, 1);
  EXPECT_EQ(saved.batch, 4);
  DataLoader resumed(tiny_dataset(50), options, saved);
  for (int i = 11; i < 20; ++i) EXPECT_TRUE(torch::equal(resumed.next().indices, expected[i])) << i;
}

TEST(DataLoader, WorkersGiveExactlyTheSynchronousStream) {
  DataLoaderOptions sync_options;
  sync_options.batch_size = 16;
  sync_options.num_workers = 0;
  auto worker_options = sync_options;
  worker_options.num_workers = 4;
  DataLoader sync(tiny_dataset(200), sync_options), threaded(tiny_dataset(200), worker_options);
  for (int i = 0; i < 40; ++i) {
    const auto a = sync.next(), b = threaded.next();
    ASSERT_TRUE(torch::equal(a.indices, b.indices)) << i;
    ASSERT_TRUE(torch::equal(a.images, b.images)) << i;
    ASSERT_TRUE(torch::equal(a.labels, b.labels)) << i;
  }
}

TEST(DataLoader, KeepLastPartialBatch) {
  DataLoaderOptions options;
  options.batch_size = 30;
  options.shuffle = false;
  options.drop_last = false;
  options.num_workers = 2;
  DataLoader loader(tiny_dataset(100), options);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(loader.next().images.size(0), 30);
  const auto last = loader.next();
  EXPECT_EQ(last.images.size(0), 10);
  EXPECT_EQ(last.indices[0].item<int64_t>(), 90);
  EXPECT_EQ(last.images.sizes(), (std::vector<int64_t>{10, 1, 2, 2}));
}

class FailingDataset : public Dataset {
 public:
  int64_t size() const override { return 10; }
  std::vector<int64_t> image_shape() const override { return {1, 1, 1}; }
  torch::Tensor get_image(int64_t index) const override {
    if (index == 3) throw Error("[failing] bad.png: not a PNG");
    return torch::zeros({1, 1, 1});
  }
  std::string describe() const override { return "failing"; }
};

TEST(DataLoader, WorkerErrorsReachTheCaller) {
  DataLoaderOptions options;
  options.batch_size = 5;
  options.shuffle = false;
  options.num_workers = 2;
  DataLoader loader(std::make_shared<FailingDataset>(), options);
  EXPECT_THROW(loader.next(), Error);
  EXPECT_NO_THROW(loader.next());
}

TEST(DataLoader, BadOptionsAreClearErrors) {
  DataLoaderOptions options;
  options.batch_size = 0;
  EXPECT_THROW(DataLoader(tiny_dataset(10), options), Error);
  options.batch_size = 11;
  EXPECT_THROW(DataLoader(tiny_dataset(10), options), Error);
  options.batch_size = 5;
  EXPECT_THROW(DataLoader(tiny_dataset(10), options, LoaderPosition{0, 2}), Error);
}

}  // namespace
}  // namespace lf

namespace lf {
namespace {

// Data-parallel training: the shards of every global batch, in rank order, are the batch a single
// process reads.
TEST(DataLoaderShards, ShardsOfEachBatchMakeTheSingleProcessBatch) {
  DataLoaderOptions whole;
  whole.batch_size = 12;
  whole.num_workers = 0;
  whole.seed = 3;
  DataLoader single(tiny_dataset(100), whole);
  std::vector<std::unique_ptr<DataLoader>> shards;
  for (int r = 0; r < 3; ++r) {
    DataLoaderOptions o = whole;
    o.shard_index = r;
    o.shard_count = 3;
    shards.push_back(std::make_unique<DataLoader>(tiny_dataset(100), o));
  }
  for (int step = 0; step < 20; ++step) {  // crosses epochs (8 batches each)
    const auto expected = single.next().indices;
    std::vector<torch::Tensor> parts;
    for (auto& s : shards) {
      parts.push_back(s->next().indices);
      EXPECT_EQ(parts.back().size(0), 4);
      EXPECT_EQ(s->position().batch, single.position().batch);
    }
    EXPECT_TRUE(torch::equal(torch::cat(parts), expected)) << "step " << step;
  }
  DataLoaderOptions bad = whole;
  bad.shard_count = 5;  // 12 does not split into 5
  EXPECT_THROW(DataLoader(tiny_dataset(100), bad), Error);
}

}  // namespace
}  // namespace lf
