// Shuffling, batching and multi-threaded prefetching over a Dataset. The order of batches is a pure
// function of (seed, epoch, batch), so a position saved in a checkpoint resumes exactly.
#pragma once

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "data/dataset.h"

namespace lf {

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = true;  // drop the last incomplete batch of an epoch
  int num_workers = -1;   // -1: one per core; 0: load in the calling thread
  int prefetch = 2;       // batches in flight per worker
  uint64_t seed = 0;
  // Data-parallel training: batch_size is the global batch; this process reads the shard_index-th
  // of shard_count equal slices of every batch (batch_size must divide by shard_count), so the
  // order over all processes is the single-process order.
  int shard_index = 0;
  int shard_count = 1;
};

struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // next batch within the epoch
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, DataLoaderOptions options, LoaderPosition start = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch; after the last batch of an epoch the next epoch starts (reshuffled).
  Batch next();
  LoaderPosition position() const;  // of the batch next() returns next
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  const Dataset& dataset() const { return *dataset_; }

  // Dataset indices of one batch; exposed for tests.
  std::vector<int64_t> batch_indices(int64_t epoch, int64_t batch) const;

 private:
  Batch produce(int64_t sequence) const;
  void worker_loop();
  void stop_workers();

  DatasetPtr dataset_;
  DataLoaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  int64_t next_sequence_ = 0;  // global batch number handed out by next()

  // Worker state
  std::vector<std::thread> workers_;
  mutable std::mutex mutex_;
  std::condition_variable produced_cv_;
  std::condition_variable consumed_cv_;
  int64_t next_to_produce_ = 0;
  int64_t capacity_ = 1;  // batches produced ahead of the consumer
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  bool stopping_ = false;
  mutable std::mutex permutation_mutex_;
  mutable std::map<int64_t, std::vector<int64_t>> permutations_;
};

}  // namespace lf
