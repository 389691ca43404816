// The training loop shared by every trainable model (autoencoders, priors, the classifier):
// optimizer with warm-up + cosine schedule, gradient clipping, a second optimizer alternating with
// the first for models with a discriminator (taming's two-optimizer GAN step), EMA of weights,
// JSONL logs of every loss and statistic, atomic checkpoints and exact resume (model, optimizer,
// EMA, step, data position, RNG), one trainer per run folder (a lock), pruning of old
// checkpoints, and NaN/Inf steps skipped, then rolled back from, never saved.
#pragma once

#include <functional>
#include <memory>

#include "data/data_loader.h"
#include "distributed/data_parallel.h"
#include "distributed/gradient_reducer.h"
#include "models/trainable.h"
#include "train/checkpoint.h"
#include "train/run_lock.h"
#include "train/run_log.h"
#include "train/train_options.h"

namespace lf {

class Trainer {
 public:
  // `run_config` is the whole resolved config saved beside every checkpoint.
  // `parallel`: one of the processes of a data-parallel run (distributed/data_parallel.h), or
  // nullptr. Then train.batch_size is the global batch, split evenly between the processes; rank 0
  // starts every rank from its weights, gradients are averaged (gradient_reducer.h), decisions
  // (skipping a step, stopping) are taken together, and only rank 0 writes the log and the
  // checkpoints (which hold every rank's RNG).
  Trainer(TrainablePtr model, DatasetPtr data, TrainOptions options, std::string run_dir,
          Config run_config, torch::Device device, uint64_t seed, DataParallel* parallel = nullptr);
  ~Trainer();

  // Continues from a checkpoint folder, or a run folder's latest checkpoint; a run folder killed
  // before its first checkpoint starts from step 0 (and says so).
  void resume(const std::string& path);
  // Trains until options.steps, or until a stop is requested (stop_request.h): then it writes a
  // checkpoint at the current step and returns with stopped() true. `on_log` sees each JSONL record
  // as it is written.
  void run(const std::function<void(const Json&)>& on_log = {}, bool progress_bar = true);
  // Writes checkpoints/step_N atomically; on failure (disk full, read-only) the previous
  // checkpoint stays intact and an lf::Error says what failed. Refuses non-finite weights.
  void save_checkpoint();

  int64_t step() const { return state_.step; }
  bool stopped() const { return stopped_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  int64_t rollbacks() const { return rollbacks_; }
  double lr_scale() const { return lr_scale_; }
  TrainablePtr model() const { return model_; }
  // Copies the EMA weights into the model (no-op without EMA).
  void apply_ema();

 private:
  void build_optimizer();
  void set_lr(double lr);
  void update_ema();
  void load_checkpoint(const std::string& dir);
  void start_data();  // data loader and RNG at state_
  void prune_checkpoints();
  // After nonfinite_patience bad steps in a row: roll back (or stop) as the options say.
  void handle_nonfinite(const std::string& what);

  TrainablePtr model_;
  DatasetPtr data_;
  TrainOptions options_;
  std::string run_dir_;
  Config run_config_;
  torch::Device device_;
  uint64_t seed_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;       // generator (or only) optimizer
  std::unique_ptr<torch::optim::Optimizer> disc_optimizer_;  // only with a discriminator
  std::vector<torch::Tensor> gen_params_, disc_params_;
  std::unique_ptr<DataLoader> loader_;
  TensorMap ema_;  // name -> EMA tensor (parameters and buffers)
  TrainingState state_;
  std::shared_ptr<RunLock> lock_;
  std::unique_ptr<RunLog> log_;
  double lr_scale_ = 1.0;  // lowered by each rollback; saved in checkpoints
  int64_t nonfinite_in_row_ = 0, skipped_steps_ = 0, rollbacks_ = 0;
  bool stopped_ = false;
  DataParallel* parallel_ = nullptr;
  std::unique_ptr<GradientReducer> gen_reducer_, disc_reducer_;
  bool root() const { return !parallel_ || parallel_->is_root(); }
  bool any_rank(bool flag) { return parallel_ ? parallel_->any(flag) : flag; }
  void broadcast_buffers();  // rank 0's buffers (BatchNorm statistics) to every rank, in one go
};

// The first tensor holding NaN or Inf, as "name"; "" when all are finite.
std::string first_nonfinite(const TensorMap& tensors);
// Throws an lf::Error naming `what` and the tensor unless every floating tensor is finite.
void require_finite(const TensorMap& tensors, const std::string& what);

}  // namespace lf
