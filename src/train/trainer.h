// The training loop shared by every trainable model (autoencoders, priors, the classifier):
// optimizer with warm-up + cosine schedule, gradient clipping, a second optimizer alternating with
// the first for models with a discriminator (taming's two-optimizer GAN step), EMA of weights,
// JSONL logs of every loss and statistic, atomic checkpoints and exact resume (model, optimizer,
// EMA, step, data position, RNG).
#pragma once

#include <functional>
#include <memory>

#include "data/data_loader.h"
#include "models/trainable.h"
#include "train/checkpoint.h"
#include "train/train_options.h"

namespace lf {

class Trainer {
 public:
  // `run_config` is the whole resolved config saved beside every checkpoint.
  Trainer(TrainablePtr model, DatasetPtr data, TrainOptions options, std::string run_dir,
          Config run_config, torch::Device device, uint64_t seed);
  ~Trainer();

  // Continues from a checkpoint folder (or a run folder's latest checkpoint).
  void resume(const std::string& path);
  // Trains until options.steps; `on_log` sees each JSONL record as it is written.
  void run(const std::function<void(const Json&)>& on_log = {}, bool progress_bar = true);
  void save_checkpoint();

  int64_t step() const { return state_.step; }
  TrainablePtr model() const { return model_; }
  // Copies the EMA weights into the model (no-op without EMA).
  void apply_ema();

 private:
  void build_optimizer();
  void set_lr(double lr);
  void update_ema();

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
};

}  // namespace lf
