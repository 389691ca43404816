// The server's job queue: one worker thread runs the queued jobs in order, so one model job runs at
// a time. Each job has an id, a state, a progress fraction and a cancel flag that the work checks
// between its stages (JobContext::progress).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace lf::serve {

using Json = nlohmann::json;

// Thrown by JobContext::progress when the job was cancelled; the queue records "cancelled".
struct JobCancelled : std::exception {
  const char* what() const noexcept override { return "cancelled"; }
};

struct Job;

class JobContext {
 public:
  JobContext(Job& job, std::mutex& mutex, std::condition_variable& changed)
      : job_(job), mutex_(mutex), changed_(changed) {}
  // Records progress (0..1) and the stage's name; throws JobCancelled once cancel was asked.
  void progress(double fraction, const std::string& stage);
  // Publishes an intermediate result (sampling: the image so far); event streams send the newest.
  void partial(Json value);
  bool cancelled() const;

 private:
  Job& job_;
  std::mutex& mutex_;
  std::condition_variable& changed_;
};

// What changed in a job since an earlier update (JobQueue::next_update).
struct JobUpdate {
  uint64_t version = 0;  // pass it back as `seen` to wait for the next change
  Json job;              // the job without its result
  Json partial;          // the newest partial result when it changed since `seen`; else null
  std::optional<Json> finished;  // the job with its result (or error) once it finished
};

using JobWork = std::function<Json(JobContext&)>;

class JobQueue {
 public:
  // max_pending: jobs that may wait (submit refuses more); keep_finished: finished jobs kept for
  // GET /api/jobs/{id}, oldest dropped first.
  explicit JobQueue(size_t max_pending = 8, size_t keep_finished = 32);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // The new job's id, or nullopt when max_pending jobs are already waiting or it is shutting down.
  std::optional<std::string> submit(const std::string& kind, const std::string& model,
                                    JobWork work);
  // {id, kind, model, state, progress, stage, error?, result? (with_result)}; nullopt: no such job.
  std::optional<Json> describe(const std::string& id, bool with_result = true) const;
  Json list() const;  // every known job, newest last, without results
  // Cancels a queued job at once, a running one at its next stage; false: no such job.
  bool cancel(const std::string& id);
  // Waits until the job finished, `timeout` passed or the queue shuts down; then describe(id).
  std::optional<Json> wait(const std::string& id, std::chrono::milliseconds timeout);
  // Waits until the job changed after version `seen` (progress, a partial result, its end), the
  // timeout passed or the queue shuts down. nullopt: no such job. Unchanged: version == seen.
  std::optional<JobUpdate> next_update(const std::string& id, uint64_t seen,
                                       std::chrono::milliseconds timeout);
  bool stopping() const;
  // Cancels everything, wakes every waiter and joins the worker. Called again: nothing.
  void shutdown();

 private:
  void run_worker();
  Json describe_locked(const Job& job, bool with_result) const;
  void forget_old_locked();

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a job was queued, finished or the queue stops
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> pending_;
  std::deque<std::string> finished_;  // ids, oldest first
  size_t max_pending_, keep_finished_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  std::mutex join_mutex_;  // shutdown may be called from two threads at once
  std::thread worker_;
};

}  // namespace lf::serve
