// Deterministic shuffled batching with a pool of prefetching workers.
#include "data/data_loader.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/runtime.h"

namespace lf {

DataLoader::DataLoader(DatasetPtr dataset, DataLoaderOptions options, LoaderPosition start)
    : dataset_(std::move(dataset)), options_(options) {
  if (!dataset_) fail("DataLoader", "no dataset");
  if (options_.batch_size <= 0)
    fail("DataLoader", "batch_size {}: expected > 0", options_.batch_size);
  if (options_.shard_count < 1 || options_.shard_index < 0 ||
      options_.shard_index >= options_.shard_count)
    fail("DataLoader", "shard {} of {}: expected 0 <= shard < count", options_.shard_index,
         options_.shard_count);
  if (options_.batch_size % options_.shard_count != 0)
    fail("DataLoader", "batch_size {}: expected a multiple of the {} processes (the global batch)",
         options_.batch_size, options_.shard_count);
  if (!options_.drop_last && options_.shard_count > 1)
    fail("DataLoader", "drop_last: expected true when the batch is split between processes");
  const int64_t n = dataset_->size();
  batches_per_epoch_ = options_.drop_last ? n / options_.batch_size
                                          : (n + options_.batch_size - 1) / options_.batch_size;
  if (batches_per_epoch_ == 0)
    fail("DataLoader", "{}: {} images is less than one batch of {}", dataset_->describe(), n,
         options_.batch_size);
  if (start.batch < 0 || start.batch >= batches_per_epoch_ || start.epoch < 0)
    fail("DataLoader", "resume position epoch {} batch {}: expected batch in [0, {})", start.epoch,
         start.batch, batches_per_epoch_);
  next_sequence_ = next_to_produce_ = start.epoch * batches_per_epoch_ + start.batch;
  const int workers = options_.num_workers < 0 ? hardware_threads() : options_.num_workers;
  capacity_ = std::max<int64_t>(1, int64_t(std::max(1, options_.prefetch)) * workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  stop_workers();
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  consumed_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

std::vector<int64_t> DataLoader::batch_indices(int64_t epoch, int64_t batch) const {
  const int64_t n = dataset_->size();
  const int64_t share = options_.batch_size / options_.shard_count;
  const int64_t begin = batch * options_.batch_size + options_.shard_index * share;
  const int64_t end = std::min(n, begin + share);
  std::vector<int64_t> out;
  out.reserve(end - begin);
  if (!options_.shuffle) {
    for (int64_t i = begin; i < end; ++i) out.push_back(i);
    return out;
  }
  std::lock_guard<std::mutex> lock(permutation_mutex_);
  auto it = permutations_.find(epoch);
  if (it == permutations_.end()) {
    std::vector<int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
    // Fisher-Yates written out: std::shuffle's algorithm is implementation-defined.
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
      std::swap(perm[i], perm[j]);
    }
    while (permutations_.size() >= 3) permutations_.erase(permutations_.begin());
    it = permutations_.emplace(epoch, std::move(perm)).first;
  }
  out.assign(it->second.begin() + begin, it->second.begin() + end);
  return out;
}

Batch DataLoader::produce(int64_t sequence) const {
  return dataset_->get_batch(
      batch_indices(sequence / batches_per_epoch_, sequence % batches_per_epoch_));
}

void DataLoader::worker_loop() {
  while (true) {
    int64_t sequence;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      consumed_cv_.wait(lock,
                        [&] { return stopping_ || next_to_produce_ < next_sequence_ + capacity_; });
      if (stopping_) return;
      sequence = next_to_produce_++;
    }
    Batch batch;
    std::exception_ptr error;
    try {
      batch = produce(sequence);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error)
        errors_[sequence] = error;
      else
        ready_[sequence] = std::move(batch);
    }
    produced_cv_.notify_all();
  }
}

Batch DataLoader::next() {
  const int64_t sequence = next_sequence_;
  if (workers_.empty()) {
    ++next_sequence_;
    return produce(sequence);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  produced_cv_.wait(lock, [&] { return ready_.count(sequence) || errors_.count(sequence); });
  ++next_sequence_;
  consumed_cv_.notify_all();
  if (auto e = errors_.find(sequence); e != errors_.end()) {
    auto error = e->second;
    errors_.erase(e);
    std::rethrow_exception(error);
  }
  Batch batch = std::move(ready_[sequence]);
  ready_.erase(sequence);
  return batch;
}

LoaderPosition DataLoader::position() const {
  return {next_sequence_ / batches_per_epoch_, next_sequence_ % batches_per_epoch_};
}

}  // namespace lf
