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

// {"test_nll", "test_bits_per_code", "test_code_maps", "processes" (data-parallel)} on the test
// split's codes (eval_limit > 0: its first eval_limit code maps only); every process of a
// data-parallel run calls it, as prior_nll.
Json prior_test_metrics(PriorImpl& prior, const PriorStages& stages, const DatasetSpec& train_spec,
                        torch::Device device, int64_t eval_limit = 0);

// The report's files, with `metrics` from prior_test_metrics (the same eval_limit); returns them.
Json write_prior_report(const std::string& run_dir, PriorImpl& prior, const PriorStages& stages,
                        const DatasetSpec& train_spec, torch::Device device, uint64_t seed,
                        const Json& metrics, int64_t eval_limit = 0);

}  // namespace lf
