// Classifier features and predictions over image batches, and the scores built from them.
#include "eval/sample_score.h"

#include <cmath>

#include "core/collectives.h"
#include "core/error.h"
#include "eval/frechet_distance.h"

namespace lf {

namespace {

// Eval mode for the scope, then back to what it was.
class EvalScope {
 public:
  explicit EvalScope(ClassifierImpl& model) : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~EvalScope() {
    if (was_training_) model_.train();
  }

 private:
  ClassifierImpl& model_;
  bool was_training_;
};

// Runs `next(begin, end)` -> images [b, C, H, W] for consecutive ranges of [0, n) of
// `batch_size`; with `share`, only this process's share of them in a data-parallel run (every
// world_size-th batch from its rank's, as eval/evaluate.cpp splits them).
template <typename Next>
ClassifierOutputs run_batches(ClassifierImpl& model, int64_t n, torch::Device device,
                              int64_t batch_size, Next next, bool share = false) {
  if (batch_size <= 0) fail("classify", "batch_size: expected > 0, got {}", batch_size);
  torch::NoGradGuard no_grad;
  EvalScope eval(model);
  std::vector<torch::Tensor> features, logits;
  const int64_t ranks = share ? collective_world_size() : 1, rank = share ? collective_rank() : 0;
  for (int64_t begin = rank * batch_size; begin < n; begin += ranks * batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    const auto f = model.features(next(begin, end).to(device));  // [b, D]
    logits.push_back(model.classify(f).to(torch::kCPU, torch::kFloat32));
    features.push_back(f.to(torch::kCPU, torch::kFloat32));
  }
  ClassifierOutputs out;
  const int64_t d = model.options().feature_dim(), k = model.options().num_classes();
  out.features = features.empty() ? torch::zeros({0, d}) : torch::cat(features);
  out.logits = logits.empty() ? torch::zeros({0, k}) : torch::cat(logits);
  out.predictions = out.logits.argmax(1);
  return out;
}

// hits / counts per class; null where a class has no image.
Json share_per_class(const torch::Tensor& hits, const torch::Tensor& counts) {
  const auto h = hits.to(torch::kFloat64), c = counts.to(torch::kFloat64);
  Json list = Json::array();
  for (int64_t k = 0; k < c.size(0); ++k) {
    const double count = c[k].item<double>();
    if (count == 0)
      list.push_back(nullptr);
    else
      list.push_back(h[k].item<double>() / count);
  }
  return list;
}

// Share of predictions == labels per class; null where a class has no label.
Json per_class_accuracy(const torch::Tensor& predictions, const torch::Tensor& labels,
                        int64_t num_classes) {
  const auto correct = (predictions == labels).to(torch::kInt64);
  return share_per_class(torch::zeros({num_classes}, torch::kInt64).index_add_(0, labels, correct),
                         torch::bincount(labels, {}, num_classes));
}

Json counts_json(const torch::Tensor& predictions, int64_t num_classes) {
  const auto counts = torch::bincount(predictions, {}, num_classes);
  return Json(std::vector<int64_t>(counts.data_ptr<int64_t>(),
                                   counts.data_ptr<int64_t>() + counts.numel()));
}

ClassifierOutputs classify_real(ClassifierImpl& model, const Dataset& real, torch::Device device,
                                const ScoreOptions& options, int64_t minimum) {
  const auto out = classify_dataset(model, real, device, options.batch_size, options.real_limit);
  if (out.features.size(0) < minimum)
    fail("score_samples", "{}: {} real images; expected at least {}", real.describe(),
         out.features.size(0), minimum);
  return out;
}

}  // namespace

ClassifierOutputs classify_images(ClassifierImpl& model, const torch::Tensor& images,
                                  torch::Device device, int64_t batch_size) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != model.options().in_channels())
    fail("classify_images", "expected images [N, {}, H, W], got {}", model.options().in_channels(),
         images.defined() ? shape_str(images.sizes()) : "none");
  return run_batches(model, images.size(0), device, batch_size, [&](int64_t begin, int64_t end) {
    return images.slice(0, begin, end).to(torch::kFloat32);
  });
}

namespace {

ClassifierOutputs classify_batches(ClassifierImpl& model, const Dataset& data, torch::Device device,
                                   int64_t batch_size, int64_t limit, bool share) {
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  std::vector<torch::Tensor> labels;
  auto out = run_batches(
      model, n, device, batch_size,
      [&](int64_t begin, int64_t end) {
        std::vector<int64_t> indices;
        for (int64_t i = begin; i < end; ++i) indices.push_back(i);
        Batch batch = data.get_batch(indices);
        labels.push_back(batch.labels.defined() ? batch.labels.to(torch::kCPU, torch::kInt64)
                                                : torch::full({end - begin}, -1, torch::kInt64));
        return batch.images;
      },
      share);
  out.labels = labels.empty() ? torch::zeros({0}, torch::kInt64) : torch::cat(labels);
  return out;
}

}  // namespace

ClassifierOutputs classify_dataset(ClassifierImpl& model, const Dataset& data, torch::Device device,
                                   int64_t batch_size, int64_t limit) {
  return classify_batches(model, data, device, batch_size, limit, /*share=*/false);
}

double real_halves_distance(const torch::Tensor& features) {
  if (!features.defined() || features.dim() != 2 || features.size(0) < 4)
    fail("real_halves_distance", "expected features [N, D] with N >= 4, got {}",
         features.defined() ? shape_str(features.sizes()) : "none");
  // Even / odd rows rather than first / second half: a dataset sorted by class stays balanced.
  const int64_t n = features.size(0);
  return frechet_distance(feature_stats(features.slice(0, 0, n, 2)),
                          feature_stats(features.slice(0, 1, n, 2)));
}

Json score_samples(ClassifierImpl& model, const torch::Tensor& samples, const torch::Tensor& labels,
                   const Dataset& real, torch::Device device, const ScoreOptions& options) {
  const auto& o = model.options();
  if (!samples.defined() || samples.dim() != 4 || samples.size(1) != o.in_channels())
    fail("score_samples",
         "samples: expected images [N, {}, H, W] (the classifier's channels), got {}",
         o.in_channels(), samples.defined() ? shape_str(samples.sizes()) : "none");
  const int64_t n = samples.size(0);
  if (n < 2)
    fail("score_samples", "samples: expected at least 2 images for a covariance, got {}", n);
  if (!samples.is_floating_point())
    fail("score_samples", "samples: expected float images in [-1, 1], got {}",
         c10::toString(samples.scalar_type()));
  // Catches [0, 255] images; samples straight from a decoder may overshoot [-1, 1] a little.
  const double lo = samples.min().item<double>(), hi = samples.max().item<double>();
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo < -1.5 || hi > 1.5)
    fail("score_samples", "samples: values in [{}, {}]; expected images in [-1, 1]", lo, hi);
  torch::Tensor targets;
  if (labels.defined()) {
    if (labels.dim() != 1 || labels.size(0) != n ||
        !c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false))
      fail("score_samples", "labels: expected [{}] int64 (one class per sample), got {} {}", n,
           c10::toString(labels.scalar_type()), shape_str(labels.sizes()));
    targets = labels.to(torch::kCPU, torch::kInt64);
    const int64_t min = targets.min().item<int64_t>(), max = targets.max().item<int64_t>();
    if (min < 0 || max >= o.num_classes())
      fail("score_samples", "labels: expected classes in [0, {}), got [{}, {}]", o.num_classes(),
           min, max);
  }

  const auto generated = classify_images(model, samples, device, options.batch_size);
  const auto reals = classify_real(model, real, device, options, options.real_halves ? 4 : 2);
  Json json;
  json["n"] = n;
  json["real_n"] = reals.features.size(0);
  json["frechet_distance"] =
      frechet_distance(feature_stats(generated.features), feature_stats(reals.features));
  json["predicted_classes"] = counts_json(generated.predictions, o.num_classes());
  if (targets.defined()) {
    json["accuracy"] = (generated.predictions == targets).to(torch::kFloat64).mean().item<double>();
    json["per_class_accuracy"] =
        per_class_accuracy(generated.predictions, targets, o.num_classes());
  }
  if (options.real_halves) json["fd_real_halves"] = real_halves_distance(reals.features);
  return json;
}

Json score_real_halves(ClassifierImpl& model, const Dataset& real, torch::Device device,
                       const ScoreOptions& options) {
  const auto reals = classify_real(model, real, device, options, 4);
  return Json{{"real_n", reals.features.size(0)},
              {"fd_real_halves", real_halves_distance(reals.features)}};
}

Json classifier_report(ClassifierImpl& model, const Dataset& test, torch::Device device,
                       int64_t batch_size, int64_t limit) {
  // Each process of a data-parallel run classifies its share; what the report needs are sums
  // (hits and images per class, the summed loss), added over the processes in float64 (exact for
  // these counts), so every process ends with the same report.
  const auto out = classify_batches(model, test, device, batch_size, limit, /*share=*/true);
  const int64_t k = model.options().num_classes();
  const int64_t local = out.labels.size(0);
  auto range =
      torch::tensor({local ? out.labels.min().item<double>() : 0.0,
                     local ? out.labels.max().item<double>() : 0.0, static_cast<double>(local)},
                    torch::kFloat64)
          .view({1, 3});
  range = all_gather_rows(range);  // [processes, 3]: label range and images of each process
  const auto had = range.select(1, 2) > 0;
  const int64_t n = static_cast<int64_t>(range.select(1, 2).sum().item<double>());
  if (n == 0) fail("classifier_report", "{}: no images", test.describe());
  const auto min = static_cast<int64_t>(range.select(1, 0).masked_select(had).min().item<double>());
  const auto max = static_cast<int64_t>(range.select(1, 1).masked_select(had).max().item<double>());
  if (min < 0 || max >= k)
    fail("classifier_report", "{}: labels in [{}, {}]; expected classes in [0, {}) for every image",
         test.describe(), min, max, k);

  auto sums = torch::zeros({2 * k + 1}, torch::kFloat64);  // hits per class, images per class, loss
  if (local > 0) {
    const auto correct = (out.predictions == out.labels).to(torch::kFloat64);
    sums.slice(0, 0, k).index_add_(0, out.labels, correct);
    sums.slice(0, k, 2 * k).index_add_(0, out.labels, torch::ones_like(correct));
    sums[2 * k] = torch::nn::functional::cross_entropy(
                      out.logits.to(torch::kFloat64), out.labels,
                      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>();
  }
  all_reduce_sum(sums);
  const auto hits = sums.slice(0, 0, k), counts = sums.slice(0, k, 2 * k);
  Json json;
  json["images"] = n;
  json["accuracy"] = hits.sum().item<double>() / static_cast<double>(n);
  json["loss_ce"] = sums[2 * k].item<double>() / static_cast<double>(n);
  json["per_class_accuracy"] = share_per_class(hits, counts);
  if (const int64_t ranks = collective_world_size(); ranks > 1) json["processes"] = ranks;
  if (const auto names = test.class_names(); !names.empty()) json["class_names"] = names;
  return json;
}

}  // namespace lf
