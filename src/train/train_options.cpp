// TrainOptions parsing and the warm-up + cosine schedule.
#include "train/train_options.h"

#include <algorithm>
#include <cmath>

namespace lf {

TrainOptions TrainOptions::from_config(const Config& train) {
  TrainOptions o;
  const Json defaults = o.to_json();
  for (const auto& [key, value] : train.json().items())
    if (!defaults.contains(key))
      fail("train", "{}: unknown key 'train.{}' (known: {})", train.source(), key, [&] {
        std::string names;
        for (const auto& [k, v] : defaults.items()) names += (names.empty() ? "" : ", ") + k;
        return names;
      }());
  o.steps = train.get<int64_t>("steps", o.steps);
  o.batch_size = train.get<int64_t>("batch_size", o.batch_size);
  o.optimizer = train.get<std::string>("optimizer", o.optimizer);
  o.lr = train.get<double>("lr", o.lr);
  o.weight_decay = train.get<double>("weight_decay", o.weight_decay);
  o.beta1 = train.get<double>("beta1", o.beta1);
  o.beta2 = train.get<double>("beta2", o.beta2);
  o.warmup_steps = train.get<int64_t>("warmup_steps", o.warmup_steps);
  o.schedule = train.get<std::string>("schedule", o.schedule);
  o.min_lr_ratio = train.get<double>("min_lr_ratio", o.min_lr_ratio);
  o.grad_clip = train.get<double>("grad_clip", o.grad_clip);
  o.ema_decay = train.get<double>("ema_decay", o.ema_decay);
  o.log_every = train.get<int64_t>("log_every", o.log_every);
  o.checkpoint_every = train.get<int64_t>("checkpoint_every", o.checkpoint_every);
  o.num_workers = train.get<int>("num_workers", o.num_workers);
  o.keep_last = train.get<int64_t>("keep_last", o.keep_last);
  o.preview_every = train.get<int64_t>("preview_every", o.preview_every);
  o.nonfinite_patience = train.get<int64_t>("nonfinite_patience", o.nonfinite_patience);
  o.on_nonfinite = train.get<std::string>("on_nonfinite", o.on_nonfinite);
  o.rollback_lr_factor = train.get<double>("rollback_lr_factor", o.rollback_lr_factor);
  o.max_rollbacks = train.get<int64_t>("max_rollbacks", o.max_rollbacks);
  if (o.steps <= 0) fail("train", "steps {}: expected > 0", o.steps);
  if (o.batch_size <= 0) fail("train", "batch_size {}: expected > 0", o.batch_size);
  if (o.optimizer != "adam" && o.optimizer != "adamw")
    fail("train", "optimizer '{}': expected adam or adamw", o.optimizer);
  if (o.schedule != "cosine" && o.schedule != "constant")
    fail("train", "schedule '{}': expected cosine or constant", o.schedule);
  if (o.lr <= 0) fail("train", "lr {}: expected > 0", o.lr);
  if (o.ema_decay < 0 || o.ema_decay >= 1)
    fail("train", "ema_decay {}: expected 0 (off) or in (0, 1)", o.ema_decay);
  if (o.log_every <= 0) fail("train", "log_every {}: expected > 0", o.log_every);
  if (o.keep_last < 0) fail("train", "keep_last {}: expected 0 (keep all) or > 0", o.keep_last);
  if (o.preview_every < -1)
    fail("train", "preview_every {}: expected -1 (never), 0 (about 20 per run) or > 0",
         o.preview_every);
  if (o.nonfinite_patience <= 0)
    fail("train", "nonfinite_patience {}: expected > 0", o.nonfinite_patience);
  if (o.on_nonfinite != "rollback" && o.on_nonfinite != "stop")
    fail("train", "on_nonfinite '{}': expected rollback or stop", o.on_nonfinite);
  if (o.rollback_lr_factor <= 0 || o.rollback_lr_factor > 1)
    fail("train", "rollback_lr_factor {}: expected in (0, 1]", o.rollback_lr_factor);
  if (o.max_rollbacks < 0) fail("train", "max_rollbacks {}: expected >= 0", o.max_rollbacks);
  return o;
}

Json TrainOptions::to_json() const {
  return {{"steps", steps},
          {"batch_size", batch_size},
          {"optimizer", optimizer},
          {"lr", lr},
          {"weight_decay", weight_decay},
          {"beta1", beta1},
          {"beta2", beta2},
          {"warmup_steps", warmup_steps},
          {"schedule", schedule},
          {"min_lr_ratio", min_lr_ratio},
          {"grad_clip", grad_clip},
          {"ema_decay", ema_decay},
          {"log_every", log_every},
          {"checkpoint_every", checkpoint_every},
          {"num_workers", num_workers},
          {"keep_last", keep_last},
          {"preview_every", preview_every},
          {"nonfinite_patience", nonfinite_patience},
          {"on_nonfinite", on_nonfinite},
          {"rollback_lr_factor", rollback_lr_factor},
          {"max_rollbacks", max_rollbacks}};
}

double TrainOptions::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return lr * static_cast<double>(step + 1) / warmup_steps;
  if (schedule == "constant") return lr;
  const double span = std::max<int64_t>(1, steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  const double min_lr = lr * min_lr_ratio;
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

int64_t TrainOptions::preview_interval() const {
  if (preview_every > 0) return preview_every;
  if (preview_every < 0) return 0;
  // About 20 previews, on logged steps.
  const int64_t every = std::max<int64_t>(1, (steps + 19) / 20);
  return (every + log_every - 1) / log_every * log_every;
}

}  // namespace lf
