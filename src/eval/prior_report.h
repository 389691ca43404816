// What a finished prior run leaves to look at: metrics.json (negative log-likelihood of the test
// split's codes, in nats and bits per code), samples.png (samples decoded by the first stage; one
// column per class for class-conditional priors, the test sketches' conditions for
// image-conditional ones) and training_curves.png.
#pragma once

#include "priors/prior.h"
#include "priors/prior_data.h"

namespace lf {

// Mean cross-entropy (nats per code) of the prior on a code dataset. In a data-parallel run
// every process must call it: each takes its share of the batches, and all get the reduced mean.
double prior_nll(PriorImpl& prior, const CodeDataset& data, torch::Device device,
                 int64_t batch_size = 256);

// The codes of the test split (eval_limit > 0: its first eval_limit code maps only).
PriorData open_prior_test_data(const PriorStages& stages, const DatasetSpec& train_spec,
                               torch::Device device, int64_t eval_limit = 0);

// {"test_nll", "test_bits_per_code", "test_code_maps", "processes" (data-parallel)} on `test`;
// every process of a data-parallel run calls it, as prior_nll.
Json prior_test_metrics(PriorImpl& prior, const CodeDataset& test, torch::Device device);

// The report's files, with `metrics` from prior_test_metrics on `test` (whose first condition
// maps condition the samples of an image-conditional prior); returns the metrics.
Json write_prior_report(const std::string& run_dir, PriorImpl& prior, const PriorStages& stages,
                        const CodeDataset& test, torch::Device device, uint64_t seed,
                        const Json& metrics);

}  // namespace lf
