// Test likelihood and decoded samples of a trained prior.
#include "eval/prior_report.h"

#include <cmath>

#include "core/collectives.h"
#include "eval/run_report.h"
#include "io/atomic_file.h"
#include "io/tensor_io.h"
#include "models/saved_model.h"

namespace lf {

double prior_nll(PriorImpl& prior, const CodeDataset& data, torch::Device device,
                 int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = prior.is_training();
  prior.eval();
  // Each process of a data-parallel run takes every world_size-th batch, from its rank's on.
  const int64_t ranks = collective_world_size(), rank = collective_rank();
  double total = 0;
  for (int64_t begin = rank * batch_size; begin < data.size(); begin += ranks * batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(data.size(), begin + batch_size); ++i)
      indices.push_back(i);
    const Batch batch = data.get_batch(indices).to(device);
    PriorCondition cond;
    if (prior.num_classes() > 0) cond.labels = batch.labels;
    if (prior.cond_num_codes() > 0) cond.cond_codes = batch.cond_codes;
    const auto logits = prior.logits(batch.codes, cond);
    total += torch::nn::functional::cross_entropy(
                 logits, batch.codes,
                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                 .item<double>();
  }
  prior.train(was_training);
  auto sum = torch::tensor({total}, torch::kFloat64);
  all_reduce_sum(sum);
  return sum.item<double>() /
         static_cast<double>(data.size() * data.codes().size(1) * data.codes().size(2));
}

PriorData open_prior_test_data(const PriorStages& stages, const DatasetSpec& train_spec,
                               torch::Device device, int64_t eval_limit) {
  DatasetSpec test_spec = train_spec;
  test_spec.split = "test";
  test_spec.limit = eval_limit;
  return open_prior_data(stages, test_spec, device);
}

Json prior_test_metrics(PriorImpl& prior, const CodeDataset& test, torch::Device device) {
  const double nll = prior_nll(prior, test, device);
  Json metrics = {{"test_nll", nll},
                  {"test_bits_per_code", nll / std::log(2.0)},
                  {"test_code_maps", test.size()}};
  if (const int ranks = collective_world_size(); ranks > 1) metrics["processes"] = ranks;
  return metrics;
}

Json write_prior_report(const std::string& run_dir, PriorImpl& prior, const PriorStages& stages,
                        const CodeDataset& test, torch::Device device, uint64_t seed,
                        const Json& metrics) {
  // Samples: 8 per class in class columns, or the first 64 test conditions, or 64 free ones.
  const int64_t classes = prior.num_classes();
  const int64_t n = classes > 0 ? 8 * classes : 64;
  PriorCondition cond;
  if (classes > 0) cond.labels = torch::arange(n, torch::kInt64).remainder(classes);
  if (prior.cond_num_codes() > 0) cond.cond_codes = test.cond_codes().slice(0, 0, n).to(device);
  auto generator = make_generator(seed);
  const auto& grid = prior.grid();
  const auto codes = prior.sample(cond.cond_codes.defined() ? cond.cond_codes.size(0) : n, grid[0],
                                  grid[1], cond, SamplingOptions(), generator);
  auto stage1 = load_model(stages.stage1, device);
  torch::NoGradGuard no_grad;
  const auto images = stage1.model->decode({{"indices", codes}}).clamp(-1, 1).to(torch::kCPU);
  write_images(run_dir + "/samples.png", enlarged_for_viewing(images), classes > 0 ? classes : 8);
  plot_training_curves(run_dir + "/log.jsonl", run_dir + "/training_curves.png");
  write_file_atomic(run_dir + "/metrics.json", metrics.dump(2) + "\n");
  return metrics;
}

}  // namespace lf
