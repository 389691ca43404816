// Training hyperparameters (the `train:` section of a config) and the learning-rate schedule.
#pragma once

#include <string>

#include "io/config.h"

namespace lf {

struct TrainOptions {
  int64_t steps = 2000;
  int64_t batch_size = 128;
  std::string optimizer = "adam";  // adam | adamw
  double lr = 2e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  int64_t warmup_steps = 100;       // linear warm-up from 0
  std::string schedule = "cosine";  // cosine | constant (after warm-up)
  double min_lr_ratio = 0.05;       // cosine decays to lr * min_lr_ratio
  double grad_clip = 1.0;           // max global grad norm; 0 = off
  double ema_decay = 0.0;           // EMA of weights; 0 = off
  int64_t log_every = 10;           // steps per JSONL record (values averaged over them)
  int64_t checkpoint_every = 500;   // 0 = only at the end
  int64_t keep_last = 0;            // checkpoints kept (newest first); 0 = all
  // Image autoencoders: reconstructions of a fixed test batch written to previews/step_N.png every
  // this many steps (the web UI's step slider); 0 = about 20 over the run, -1 = never.
  int64_t preview_every = 0;
  // A step whose loss or gradient norm is NaN/Inf is skipped (no optimizer step) and counted;
  // after nonfinite_patience such steps in a row, training rolls back to the latest checkpoint
  // with the learning rate times rollback_lr_factor (at most max_rollbacks times), or stops.
  int64_t nonfinite_patience = 5;
  std::string on_nonfinite = "rollback";  // rollback | stop
  double rollback_lr_factor = 0.5;
  int64_t max_rollbacks = 3;
  int num_workers = -1;  // data loader workers; -1 = one per core

  static TrainOptions from_config(const Config& train);  // unknown keys are an error
  Json to_json() const;
  double lr_at(int64_t step) const;  // schedule value for step (0-based)
  int64_t preview_interval() const;  // preview_every resolved: steps between previews; 0 = none
};

}  // namespace lf
