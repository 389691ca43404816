// What a finished run leaves to look at: metrics.json (eval on the test split), reconstructions.png
// (originals above, reconstructions below), training_curves.png (from log.jsonl),
// codebook_usage.png (VQ models) and samples.png (models with a prior of their own).
#pragma once

#include "eval/evaluate.h"

namespace lf {

Json write_run_report(const std::string& run_dir, AutoencoderImpl& model, const Dataset& test_data,
                      torch::Device device, int64_t eval_limit = 0);
// The same with the evaluation already done (a data-parallel run evaluates on every rank, then
// rank 0 writes).
Json write_run_report(const std::string& run_dir, AutoencoderImpl& model, const Dataset& test_data,
                      torch::Device device, const EvalResult& result);

// Reads log.jsonl and plots every loss-like key against the step.
void plot_training_curves(const std::string& log_path, const std::string& out_path);

// Small images enlarged for viewing, nearest neighbour by a whole factor, to at least 96 px high
// (28 px garments: 4x). images: [N, C, H, W] -> [N, C, kH, kW]
torch::Tensor enlarged_for_viewing(const torch::Tensor& images);

// originals [N,...] and reconstructions [N,...] -> one grid, originals in the upper rows
torch::Tensor comparison_grid_images(const torch::Tensor& originals,
                                     const torch::Tensor& reconstructions);

}  // namespace lf
