// Trainer robustness: runs killed before their first checkpoint resume from step 0, the log has
// each step once, keep_last prunes, a second trainer is refused by the lock, a failed checkpoint
// write keeps the previous one, and NaN/Inf steps are skipped, rolled back from, or stop training.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/state_dict.h"
#include "train/checkpoint.h"
#include "train/stop_request.h"
#include "train/trainer.h"
#include "train/trainer_test_util.h"

namespace fs = std::filesystem;

namespace lf {
namespace {

using test::blobs;
using test::fresh_dir;
using test::small_options;
using test::TinyAEImpl;

std::vector<Json> read_log(const std::string& dir) {
  std::vector<Json> records;
  std::ifstream in(dir + "/log.jsonl");
  std::string line;
  while (std::getline(in, line)) records.push_back(Json::parse(line));
  return records;
}

// The "step" of every record that is not an event, in file order.
std::vector<int64_t> logged_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  for (const auto& r : read_log(dir))
    if (!r.contains("event")) steps.push_back(r.at("step").get<int64_t>());
  return steps;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TrainerRobustness, RunKilledBeforeItsFirstCheckpointResumesFromStepZero) {
  const std::string dir = fresh_dir("killed_early");
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << "{}\n";
  std::ofstream(dir + "/log.jsonl") << "{\"step\": 2, \"loss\": 1.0}\n{\"step\": 4, \"lo";
  Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(64), small_options(0), dir, Config(),
                  torch::kCPU, 0);
  trainer.resume(dir);
  EXPECT_EQ(trainer.step(), 0);
  trainer.run({}, false);
  EXPECT_EQ(logged_steps(dir), (std::vector<int64_t>{2, 4, 6, 8, 10, 12}));
}

TEST(TrainerRobustness, ResumedStepsAreLoggedOnce) {
  const std::string dir = fresh_dir("log_once");
  {
    torch::manual_seed(1);
    auto options = small_options(0);
    options.steps = 5;
    Trainer first(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU,
                  0);
    first.run({}, false);
  }
  // As if killed at step 8 (after logging it, mid-way through the next line), past step 5's
  // checkpoint.
  {
    std::ofstream log(dir + "/log.jsonl", std::ios::app);
    log << "{\"step\": 6, \"loss\": 9}\n{\"step\": 8, \"loss\": 9}\n{\"step\": 1";
  }
  Trainer second(std::make_shared<TinyAEImpl>(), blobs(64), small_options(0), dir, Config(),
                 torch::kCPU, 0);
  second.resume(dir);
  EXPECT_EQ(second.step(), 5);
  second.run({}, false);
  EXPECT_EQ(logged_steps(dir), (std::vector<int64_t>{2, 4, 5, 6, 8, 10, 12}));
  for (const auto& r : read_log(dir)) EXPECT_NE(r.value("loss", 0.0), 9.0) << r.dump();
}

TEST(TrainerRobustness, KeepLastPrunesOldCheckpointsButNeverLatest) {
  const std::string dir = fresh_dir("keep_last");
  auto options = small_options(0);
  options.steps = 17;
  options.keep_last = 2;
  Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU,
                  0);
  trainer.run({}, false);
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir + "/checkpoints"))
    names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"latest", "step_0000015", "step_0000017"}));
  EXPECT_EQ(latest_checkpoint(dir), dir + "/checkpoints/step_0000017");
}

TEST(TrainerRobustness, ASecondTrainerIsRefusedWithTheOwnersPid) {
  const std::string dir = fresh_dir("locked");
  fs::create_directories(dir);
  const std::string lock_path = dir + "/train.lock";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // only async-signal-safe calls: another "trainer" holding the lock
    const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
    char text[16];
    int n = 0;
    for (pid_t p = getpid(); p > 0; p /= 10) text[n++] = static_cast<char>('0' + p % 10);
    for (int i = 0; i < n / 2; ++i) std::swap(text[i], text[n - 1 - i]);
    if (write(fd, text, n) != n || write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  const std::string message = error_of([&] {
    Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(32), small_options(0), dir, Config(),
                    torch::kCPU, 0);
  });
  EXPECT_NE(message.find("another trainer (pid " + std::to_string(child) + ")"), std::string::npos)
      << message;
  // Killed with SIGKILL, the owner leaves no stale lock behind.
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(32), small_options(0), dir, Config(),
                  torch::kCPU, 0);
  EXPECT_EQ(lock_run_dir(dir).get(), lock_run_dir(dir).get());  // shared within the process
}

// Files above `bytes` cannot be written while alive: a full disk, as the writer sees it (EFBIG).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    previous_handler_ = signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit limit = previous_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &previous_);
    signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit previous_{};
  sighandler_t previous_handler_;
};

TEST(TrainerRobustness, AFailedCheckpointWriteKeepsThePreviousOne) {
  const std::string dir = fresh_dir("disk_full");
  auto options = small_options(0);
  options.steps = 5;
  options.log_every = 5;
  {
    Trainer first(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU,
                  0);
    first.run({}, false);
  }
  options.steps = 8;
  Trainer second(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU, 0);
  second.resume(dir);
  std::string message;
  {
    FileSizeLimit limit(2048);  // the log fits, the optimizer state does not
    message = error_of([&] { second.run({}, false); });
  }
  EXPECT_NE(message.find("cannot write " + dir + "/checkpoints/step_0000008"), std::string::npos)
      << message;
  EXPECT_NE(message.find("step_0000005 is intact"), std::string::npos) << message;
  EXPECT_EQ(latest_checkpoint(dir), dir + "/checkpoints/step_0000005");
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/step_0000008"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/step_0000008.tmp"));
  Trainer third(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU, 0);
  third.resume(dir);  // the previous checkpoint still loads
  EXPECT_EQ(third.step(), 5);
}

// TinyAE whose loss is NaN at chosen steps: on every visit, or only the first visit of a step.
class NaNAEImpl : public TinyAEImpl {
 public:
  NaNAEImpl(std::set<int64_t> steps, bool first_visit_only, bool poison_buffers = false)
      : steps_(std::move(steps)),
        first_visit_only_(first_visit_only),
        poison_buffers_(poison_buffers) {}
  void set_step(int64_t step) override { step_ = step; }
  TrainOutput train_step(const torch::Tensor& x) override {
    const bool bad = steps_.count(step_) && !(first_visit_only_ && visited_.count(step_));
    visited_.insert(step_);
    if (!bad) return TinyAEImpl::train_step(x);
    const auto nan = std::numeric_limits<float>::quiet_NaN();
    if (poison_buffers_) return TinyAEImpl::train_step(x * nan);  // through BatchNorm too
    auto out = TinyAEImpl::train_step(x);
    out.loss = out.loss * nan;
    return out;
  }

 private:
  std::set<int64_t> steps_, visited_;
  bool first_visit_only_, poison_buffers_;
  int64_t step_ = 0;
};

TEST(TrainerRobustness, ANonFiniteStepIsSkippedAndCounted) {
  const std::string dir = fresh_dir("nan_skip");
  auto model = std::make_shared<NaNAEImpl>(std::set<int64_t>{2, 3}, false);
  Trainer trainer(model, blobs(64), small_options(0), dir, Config(), torch::kCPU, 0);
  trainer.run({}, false);
  EXPECT_EQ(trainer.step(), 12);
  EXPECT_EQ(trainer.skipped_steps(), 2);
  EXPECT_EQ(trainer.rollbacks(), 0);
  const auto log = read_log(dir);
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[1].at("step"), 4);
  EXPECT_EQ(log[1].at("skipped_steps"), 2);
  EXPECT_FALSE(log[1].contains("loss"));  // both steps of the window were skipped
  EXPECT_FALSE(log[0].contains("skipped_steps"));
  EXPECT_EQ(first_nonfinite(module_state(*model)), "");
}

TEST(TrainerRobustness, NonFiniteStepsInARowRollBackWithALowerLearningRate) {
  const std::string dir = fresh_dir("nan_rollback");
  auto options = small_options(0);
  options.nonfinite_patience = 2;
  auto model = std::make_shared<NaNAEImpl>(std::set<int64_t>{6, 7}, /*first_visit_only=*/true);
  Trainer trainer(model, blobs(64), options, dir, Config(), torch::kCPU, 0);
  trainer.run({}, false);
  EXPECT_EQ(trainer.step(), 12);
  EXPECT_EQ(trainer.rollbacks(), 1);
  EXPECT_DOUBLE_EQ(trainer.lr_scale(), 0.5);
  EXPECT_EQ(logged_steps(dir), (std::vector<int64_t>{2, 4, 6, 8, 10, 12}));
  int events = 0;
  for (const auto& r : read_log(dir))
    if (r.contains("event")) {
      ++events;
      EXPECT_EQ(r.at("event"), "rollback");
      EXPECT_EQ(r.at("to_step"), 5);
      EXPECT_EQ(r.at("from_step"), 7);
    }
  EXPECT_EQ(events, 1);
  // The lowered rate is part of the checkpoint: a resume continues with it.
  Trainer resumed(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU,
                  0);
  resumed.resume(dir);
  EXPECT_DOUBLE_EQ(resumed.lr_scale(), 0.5);
}

TEST(TrainerRobustness, PoisonedBuffersRollBackAtOnce) {
  const std::string dir = fresh_dir("nan_buffers");
  auto model = std::make_shared<NaNAEImpl>(std::set<int64_t>{7}, true, /*poison_buffers=*/true);
  Trainer trainer(model, blobs(64), small_options(0), dir, Config(), torch::kCPU, 0);
  trainer.run({}, false);
  EXPECT_EQ(trainer.rollbacks(), 1);  // patience 5, but BatchNorm's statistics were NaN
  EXPECT_EQ(first_nonfinite(module_state(*model)), "");
}

TEST(TrainerRobustness, NonFiniteTrainingStopsWithAClearMessageWhenAsked) {
  auto options = small_options(0);
  options.nonfinite_patience = 2;
  options.on_nonfinite = "stop";
  const std::string stop_dir = fresh_dir("nan_stop");
  Trainer stop(std::make_shared<NaNAEImpl>(std::set<int64_t>{6, 7}, false), blobs(64), options,
               stop_dir, Config(), torch::kCPU, 0);
  const std::string stopped = error_of([&] { stop.run({}, false); });
  EXPECT_NE(stopped.find("step 7: loss is nan for 2 steps in a row"), std::string::npos) << stopped;
  EXPECT_EQ(latest_checkpoint(stop_dir), stop_dir + "/checkpoints/step_0000005");

  options.on_nonfinite = "rollback";
  const std::string early_dir = fresh_dir("nan_no_checkpoint");
  Trainer early(std::make_shared<NaNAEImpl>(std::set<int64_t>{0, 1}, false), blobs(64), options,
                early_dir, Config(), torch::kCPU, 0);
  const std::string none = error_of([&] { early.run({}, false); });
  EXPECT_NE(none.find("no checkpoint to roll back to"), std::string::npos) << none;

  const std::string always_dir = fresh_dir("nan_always");
  Trainer always(std::make_shared<NaNAEImpl>(std::set<int64_t>{6, 7}, false), blobs(64), options,
                 always_dir, Config(), torch::kCPU, 0);
  const std::string gave_up = error_of([&] { always.run({}, false); });
  EXPECT_NE(gave_up.find("after 3 rollbacks"), std::string::npos) << gave_up;
}

TEST(TrainerRobustness, NonFiniteWeightsAreNeverWritten) {
  const std::string dir = fresh_dir("nan_weights");
  auto model = std::make_shared<TinyAEImpl>();
  Trainer trainer(model, blobs(32), small_options(0), dir, Config(), torch::kCPU, 0);
  {
    torch::NoGradGuard no_grad;
    model->dec->weight[0][0][1][1] = std::numeric_limits<float>::infinity();
  }
  const std::string message = error_of([&] { trainer.save_checkpoint(); });
  EXPECT_NE(message.find("'dec.weight' holds NaN or Inf"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/step_0000000"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/latest"));
}

}  // namespace
}  // namespace lf

namespace lf {
namespace {

// The web UI's Stop (SIGTERM to `latentforge train`): a checkpoint at the step reached, then the
// run continues from it to the same weights as a run never stopped.
TEST(TrainerStop, AStopRequestCheckpointsTheCurrentStepAndResumesExactly) {
  const auto data = test::blobs(100);
  const std::string full_dir = test::fresh_dir("stop_full");
  torch::manual_seed(1);
  auto full_model = std::make_shared<test::TinyAEImpl>();
  Trainer full(full_model, data, test::small_options(0), full_dir, Config(), torch::kCPU, 7);
  full.run({}, false);

  const std::string dir = test::fresh_dir("stop_resumed");
  torch::manual_seed(1);
  auto model = std::make_shared<test::TinyAEImpl>();
  {
    Trainer first(model, data, test::small_options(0), dir, Config(), torch::kCPU, 7);
    first.run(
        [](const Json& record) {
          if (record["step"] == 6) request_training_stop();
        },
        false);
    clear_training_stop();
    EXPECT_TRUE(first.stopped());
    EXPECT_EQ(first.step(), 6);
  }
  EXPECT_EQ(latest_checkpoint(dir), dir + "/checkpoints/step_0000006");
  torch::manual_seed(5);
  auto resumed_model = std::make_shared<test::TinyAEImpl>();
  Trainer resumed(resumed_model, data, test::small_options(0), dir, Config(), torch::kCPU, 7);
  resumed.resume(dir);
  resumed.run({}, false);
  EXPECT_FALSE(resumed.stopped());
  EXPECT_EQ(resumed.step(), 12);
  const auto a = module_state(*full_model), b = module_state(*resumed_model);
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
}

}  // namespace
}  // namespace lf
