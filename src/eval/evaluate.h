// Evaluation of a trained autoencoder over a whole dataset split: MSE, PSNR, SSIM and, for VQ
// models, code usage over every position of every image (histogram, usage, entropy, perplexity).
#pragma once

#include "data/dataset.h"
#include "io/config.h"
#include "models/autoencoder.h"

namespace lf {

struct EvalResult {
  int64_t images = 0;
  double mse = 0, psnr = 0, ssim = 0;
  torch::Tensor code_counts;  // [K] int64, VQ models only
  double code_usage = 0;      // share of codes used at least once
  double code_entropy = 0;    // nats
  double code_perplexity = 0;
  int64_t unused_codes = 0;
  int64_t processes = 1;  // ranks that shared the work (data-parallel runs)
  Json to_json() const;
};

// In a data-parallel run (core/collectives.h active) every rank must call it: each evaluates every
// world_size-th batch and the sums are reduced, so every rank returns the whole split's result.
EvalResult evaluate(AutoencoderImpl& model, const Dataset& data, torch::Device device,
                    int64_t batch_size = 256, int64_t limit = 0);

// The first n images of a dataset, [n, C, H, W]
torch::Tensor first_images(const Dataset& data, int64_t n);

}  // namespace lf
