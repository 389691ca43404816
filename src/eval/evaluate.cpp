// Dataset-wide evaluation.
#include "eval/evaluate.h"

#include "eval/image_metrics.h"
#include "models/vector_quantizer.h"

namespace lf {

Json EvalResult::to_json() const {
  Json j = {{"images", images}, {"mse", mse}, {"psnr", psnr}, {"ssim", ssim}};
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
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(n, begin + batch_size); ++i) indices.push_back(i);
    const auto x = data.get_batch(indices).images.to(device);
    const auto code = model.encode(x);
    const auto reconstruction = model.decode(code);
    metrics.add(x, reconstruction);
    if (auto it = code.find("indices"); it != code.end()) {
      const auto counts = torch::bincount(it->second.flatten().to(torch::kCPU), {}, k);
      result.code_counts = result.code_counts.defined() ? result.code_counts + counts : counts;
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
