// The interface of an autoregressive prior over a first-stage model's code-index maps (PixelCNN,
// GPT): teacher-forced logits for training, and sampling position by position in raster order,
// optionally conditioned on a class label and/or a condition image's code map.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/trainable.h"
#include "priors/sampling.h"

namespace lf {

struct PriorCondition {
  torch::Tensor labels;      // [N] int64 class ids, or undefined (unconditional)
  torch::Tensor cond_codes;  // [N, hc, wc] int64 codes of the condition image, or undefined
};

class PriorImpl : public TrainableImpl {
 public:
  virtual int64_t num_codes() const = 0;          // K: the first stage's codebook size
  virtual int64_t num_classes() const = 0;        // 0: not class-conditional
  virtual std::vector<int64_t> grid() const = 0;  // the training code grid [h, w]
  // The condition code grid [hc, wc] and vocabulary; empty / 0 without image conditioning.
  virtual std::vector<int64_t> cond_grid() const { return {}; }
  virtual int64_t cond_num_codes() const { return 0; }

  // codes: [N, h, w] int64 -> logits [N, K, h, w]; the logits at (i, j) depend only on the codes
  // before (i, j) in raster order (and on the condition).
  virtual torch::Tensor logits(const torch::Tensor& codes, const PriorCondition& cond) = 0;
  // Draws n code maps [n, h, w] int64 (on the model's device) in raster order. h, w may exceed the
  // training grid where the model supports it. Every random draw comes from `generator` (CPU).
  virtual torch::Tensor sample(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                               const SamplingOptions& options, at::Generator& generator) = 0;

  // Cross-entropy of logits(batch.codes) against batch.codes: logs loss_nll (nats per code) and
  // bits_per_code.
  TrainOutput train_batch(const Batch& batch) override;

 protected:
  // Checks codes [N, h, w] int64 in [0, K) and the condition against the model; `where` names the
  // caller in errors.
  void check_inputs(const torch::Tensor& codes, const PriorCondition& cond,
                    const char* where) const;
};

using PriorPtr = std::shared_ptr<PriorImpl>;

}  // namespace lf
