// Dataset-wide evaluation.
#include "eval/evaluate.h"

#include "core/collectives.h"
#include "eval/image_metrics.h"
#include "models/vector_quantizer.h"

namespace lf {

Json EvalResult::to_json() const {
  Json j = {{"images", images}, {"mse", mse}, {"psnr", psnr}, {"ssim", ssim}};
  if (processes > 1) j["processes"] = processes;
  if (code_counts.defined()) {
    j["codebook"] = {{"codes", code_counts.size(0)},
                     {"usage", code_usage},
                     {"entropy", code_entropy},
                     {"perplexity", code_perplexity},
                     {"unused_codes", unused_codes}};
  }
  return j;
}

torch::Tensor first_images(const Dataset& data, int64_t n) {
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < std::min(n, data.size()); ++i) indices.push_back(i);
  return data.get_batch(indices).images;
}

EvalResult evaluate(AutoencoderImpl& model, const Dataset& data, torch::Device device,
                    int64_t batch_size, int64_t limit) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  ImageMetricsAccumulator metrics;
  EvalResult result;
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  const int64_t k = codebook_size(model);  // VQ models: for the usage histogram
  const int64_t ranks = collective_world_size(), rank = collective_rank();
  if (k > 0) result.code_counts = torch::zeros({k}, torch::kInt64);
  for (int64_t begin = 0, batch = 0; begin < n; begin += batch_size, ++batch) {
    if (batch % ranks != rank) continue;  // another rank's batch
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(n, begin + batch_size); ++i) indices.push_back(i);
    const auto x = data.get_batch(indices).images.to(device);
    const auto code = model.encode(x);
    const auto reconstruction = model.decode(code);
    metrics.add(x, reconstruction);
    if (auto it = code.find("indices"); it != code.end())
      result.code_counts += torch::bincount(it->second.flatten().to(torch::kCPU), {}, k);
  }
  result.processes = ranks;
  if (ranks > 1) {  // every rank's sums (float64: exact for these counts)
    auto sums = torch::tensor(
        {metrics.sum_mse, metrics.sum_psnr, metrics.sum_ssim, static_cast<double>(metrics.count)},
        torch::kFloat64);
    all_reduce_sum(sums);
    metrics.sum_mse = sums[0].item<double>();
    metrics.sum_psnr = sums[1].item<double>();
    metrics.sum_ssim = sums[2].item<double>();
    metrics.count = static_cast<int64_t>(std::llround(sums[3].item<double>()));
    if (result.code_counts.defined()) {
      auto counts = result.code_counts.to(torch::kFloat64);
      all_reduce_sum(counts);
      result.code_counts = counts.round().to(torch::kInt64);
    }
  }
  result.images = metrics.count;
  result.mse = metrics.mse();
  result.psnr = metrics.psnr();
  result.ssim = metrics.ssim();
  if (result.code_counts.defined()) {
    const auto stats = VectorQuantizerImpl::stats_from_counts(result.code_counts);
    result.code_usage = stats.usage_fraction;
    result.code_entropy = stats.entropy;
    result.code_perplexity = stats.perplexity;
    result.unused_codes = (result.code_counts == 0).sum().item<int64_t>();
  }
  if (was_training) model.train();
  return result;
}

}  // namespace lf
