// The job queue and its worker thread: see job_queue.h.
#include "server/job_queue.h"

#include <algorithm>

namespace lf::serve {

enum class JobState { queued, running, done, failed, cancelled };

struct Job {
  std::string id, kind, model;
  JobWork work;
  JobState state = JobState::queued;
  double progress = 0;
  std::string stage = "queued";
  std::string error;
  Json result;
  Json partial;
  uint64_t version = 1;          // bumped on every change
  uint64_t partial_version = 0;  // the version that set `partial`
  std::atomic<bool> cancel_requested{false};
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point started, finished;
};

namespace {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::queued:
      return "queued";
    case JobState::running:
      return "running";
    case JobState::done:
      return "done";
    case JobState::failed:
      return "failed";
    case JobState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

bool job_finished(JobState state) {
  return state == JobState::done || state == JobState::failed || state == JobState::cancelled;
}

double job_seconds(std::chrono::steady_clock::time_point a,
                   std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

void JobContext::progress(double fraction, const std::string& stage) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_.progress = std::clamp(fraction, 0.0, 1.0);
    job_.stage = stage;
    ++job_.version;
  }
  changed_.notify_all();
  if (cancelled()) throw JobCancelled();
}

void JobContext::partial(Json value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_.partial = std::move(value);
    job_.partial_version = ++job_.version;
  }
  changed_.notify_all();
  if (cancelled()) throw JobCancelled();
}

bool JobContext::cancelled() const {
  return job_.cancel_requested.load();
}

JobQueue::JobQueue(size_t max_pending, size_t keep_finished)
    : max_pending_(max_pending), keep_finished_(keep_finished) {
  worker_ = std::thread([this] { run_worker(); });
}

JobQueue::~JobQueue() {
  shutdown();
}

std::optional<std::string> JobQueue::submit(const std::string& kind, const std::string& model,
                                            JobWork work) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_ || pending_.size() >= max_pending_) return std::nullopt;
  auto job = std::make_shared<Job>();
  job->id = std::to_string(++next_id_);
  job->kind = kind;
  job->model = model;
  job->work = std::move(work);
  jobs_[job->id] = job;
  pending_.push_back(job);
  changed_.notify_all();
  return job->id;
}

Json JobQueue::describe_locked(const Job& job, bool with_result) const {
  Json out = {{"id", job.id},
              {"kind", job.kind},
              {"model", job.model},
              {"state", job_state_name(job.state)},
              {"progress", job.progress},
              {"stage", job.stage}};
  if (job.state != JobState::queued)
    out["seconds"] = job_seconds(
        job.started, job_finished(job.state) ? job.finished : std::chrono::steady_clock::now());
  if (job.state == JobState::queued) {
    size_t ahead = 0;
    for (const auto& p : pending_) {
      if (p->id == job.id) break;
      ++ahead;
    }
    out["queue_position"] = ahead;
  }
  if (!job.error.empty()) out["error"] = job.error;
  if (with_result && job.state == JobState::done) out["result"] = job.result;
  return out;
}

std::optional<Json> JobQueue::describe(const std::string& id, bool with_result) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return describe_locked(*it->second, with_result);
}

Json JobQueue::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Job>> all;
  for (const auto& [id, job] : jobs_) all.push_back(job);
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return std::stoull(a->id) < std::stoull(b->id); });
  Json out = Json::array();
  for (const auto& job : all) out.push_back(describe_locked(*job, /*with_result=*/false));
  return out;
}

bool JobQueue::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  Job& job = *it->second;
  job.cancel_requested = true;
  if (job.state == JobState::queued) {
    pending_.erase(std::remove(pending_.begin(), pending_.end(), it->second), pending_.end());
    job.state = JobState::cancelled;
    job.stage = "cancelled";
    job.started = job.finished = std::chrono::steady_clock::now();
    job.work = nullptr;
    ++job.version;
    finished_.push_back(job.id);
    forget_old_locked();
    changed_.notify_all();
  }
  return true;
}

std::optional<Json> JobQueue::wait(const std::string& id, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  const std::shared_ptr<Job> job = it->second;
  changed_.wait_for(lock, timeout, [&] { return stopping_ || job_finished(job->state); });
  return describe_locked(*job, /*with_result=*/true);
}

std::optional<JobUpdate> JobQueue::next_update(const std::string& id, uint64_t seen,
                                               std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  const std::shared_ptr<Job> job = it->second;
  changed_.wait_for(lock, timeout,
                    [&] { return stopping_ || job->version > seen || job_finished(job->state); });
  JobUpdate update;
  update.version = job->version;
  update.job = describe_locked(*job, /*with_result=*/false);
  if (job->partial_version > seen) update.partial = job->partial;
  if (job_finished(job->state)) update.finished = describe_locked(*job, /*with_result=*/true);
  return update;
}

bool JobQueue::stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

void JobQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, job] : jobs_) job->cancel_requested = true;
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> join_lock(join_mutex_);
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void JobQueue::forget_old_locked() {
  while (finished_.size() > keep_finished_) {
    jobs_.erase(finished_.front());
    finished_.pop_front();
  }
}

void JobQueue::run_worker() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) {
        for (auto& p : pending_) {
          p->state = JobState::cancelled;
          p->stage = "cancelled";
          ++p->version;
        }
        pending_.clear();
        return;
      }
      job = pending_.front();
      pending_.pop_front();
      job->state = JobState::running;
      job->stage = "starting";
      job->started = std::chrono::steady_clock::now();
      ++job->version;
    }
    JobContext context(*job, mutex_, changed_);
    JobState state = JobState::done;
    std::string error;
    Json result;
    try {
      if (job->cancel_requested) throw JobCancelled();
      result = job->work(context);
    } catch (const JobCancelled&) {
      state = JobState::cancelled;
    } catch (const std::exception& e) {
      state = JobState::failed;
      error = e.what();
    } catch (...) {
      state = JobState::failed;
      error = "unknown error";
    }
    std::lock_guard<std::mutex> lock(mutex_);
    job->state = state;
    job->error = error;
    job->result = std::move(result);
    job->progress = state == JobState::done ? 1.0 : job->progress;
    job->stage = job_state_name(state);
    job->finished = std::chrono::steady_clock::now();
    job->work = nullptr;  // frees what the work captured (the upload)
    job->partial = nullptr;
    ++job->version;
    finished_.push_back(job->id);
    forget_old_locked();
    changed_.notify_all();
  }
}

}  // namespace lf::serve
