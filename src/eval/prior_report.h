// What a finished prior run leaves to look at: metrics.json (negative log-likelihood of the test
// split's codes, in nats and bits per code), samples.png (samples decoded by the first stage; one
// column per class for class-conditional priors, the test sketches' conditions for
// image-conditional ones) and training_curves.png.
#pragma once

#include "priors/prior.h"
#include "priors/prior_data.h"

namespace lf {

// Mean cross-entropy (nats per code) of the prior on a code dataset.
double prior_nll(PriorImpl& prior, const CodeDataset& data, torch::Device device,
                 int64_t batch_size = 256);

// eval_limit > 0: the likelihood of the first eval_limit test code maps only.
Json write_prior_report(const std::string& run_dir, PriorImpl& prior, const PriorStages& stages,
                        const DatasetSpec& train_spec, torch::Device device, uint64_t seed,
                        int64_t eval_limit = 0);

}  // namespace lf
