// A data-parallel "world" inside one test process: each rank is a thread, and the collectives of
// core/collectives.h meet at a barrier in shared memory. It lets a unit test run code written for
// the processes of a data-parallel run (every rank calling the same collectives in the same order)
// and compare it with one process, without launching any. Ranks add up in rank order, so a
// reduction is the same on every rank.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/collectives.h"

namespace lf::test {

class ThreadRanks : public Collectives {
 public:
  explicit ThreadRanks(int world_size) : world_(world_size), slots_(world_size) {}

  int rank() const override { return current_rank(); }
  int world_size() const override { return world_; }

  void all_reduce_sum(torch::Tensor& tensor) override {
    exchange(tensor, [&] {
      auto sum = slots_[0].clone();
      for (int r = 1; r < world_; ++r) sum += slots_[r];
      tensor.copy_(sum);
    });
  }
  void broadcast(torch::Tensor& tensor, int root) override {
    exchange(tensor, [&] { tensor.copy_(slots_[root]); });
  }
  torch::Tensor all_gather_rows(const torch::Tensor& tensor) override {
    torch::Tensor rows;
    exchange(tensor, [&] { rows = torch::cat(slots_); });
    return rows;
  }

  // Runs body(rank) on world_size threads with this world installed; rethrows the first rank's
  // exception, if any, after all have ended. A rank that throws before a collective the others
  // reach leaves them waiting: bodies must fail on every rank alike (as real ranks must).
  void run(const std::function<void(int rank)>& body) {
    set_active_collectives(this);
    std::vector<std::exception_ptr> errors(world_);
    std::vector<std::thread> threads;
    for (int r = 0; r < world_; ++r)
      threads.emplace_back([&, r] {
        current_rank() = r;
        try {
          body(r);
        } catch (...) {
          errors[r] = std::current_exception();
        }
      });
    for (auto& t : threads) t.join();
    set_active_collectives(nullptr);
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
  }

 private:
  static int& current_rank() {
    thread_local int rank = 0;
    return rank;
  }

  // Every rank leaves `tensor` in its slot; once all have, each runs `read`; the slots are reused
  // only after every rank has read them.
  template <typename Read>
  void exchange(const torch::Tensor& tensor, Read read) {
    slots_[current_rank()] = tensor.detach().clone();
    wait_for_all();
    read();
    wait_for_all();
  }

  void wait_for_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    const long generation = generation_;
    if (++arrived_ == world_) {
      arrived_ = 0;
      ++generation_;
      all_arrived_.notify_all();
    } else {
      all_arrived_.wait(lock, [&] { return generation_ != generation; });
    }
  }

  const int world_;
  std::vector<torch::Tensor> slots_;
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
  long generation_ = 0;
};

}  // namespace lf::test
