// The evaluation classifier: conv stages, a feature layer, and the class head.
#include "models/classifier.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "models/ae.h"

namespace lf {

namespace F = torch::nn::functional;

void to_json(Json& json, const ClassifierOptions& o) {
  json = Json{{"in_channels", o.in_channels()}, {"image_size", o.image_size()},
              {"widths", o.widths()},           {"convs_per_stage", o.convs_per_stage()},
              {"feature_dim", o.feature_dim()}, {"num_classes", o.num_classes()},
              {"dropout", o.dropout()},         {"random_flip", o.random_flip()}};
}

void from_json(const Json& json, ClassifierOptions& o) {
  OptionReader read(json, "classifier options");
  read("in_channels", o.in_channels())("image_size", o.image_size())("widths", o.widths());
  read("convs_per_stage", o.convs_per_stage())("feature_dim", o.feature_dim());
  read("num_classes", o.num_classes())("dropout", o.dropout())("random_flip", o.random_flip());
  read.finish();
}

ClassifierOptions classifier_preset(const std::string& name) {
  // Fashion-MNIST: ~92.5% test accuracy after 2000 AdamW steps of batch 128 (configs/
  // classifier_fashion.yaml). Flips are label-preserving for clothes and shoes.
  if (name == "fashion") return ClassifierOptions().random_flip(true);
  fail("classifier_preset", "unknown preset '{}' (known: {})", name,
       fmt::join(classifier_preset_names(), ", "));
}

std::vector<std::string> classifier_preset_names() {
  return {"fashion"};
}

ClassifierImpl::ClassifierImpl(ClassifierOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.widths().empty() ||
      std::any_of(o.widths().begin(), o.widths().end(), [](int64_t w) { return w <= 0; }))
    fail("classifier", "widths: expected one or more positive channel counts, got {}",
         shape_str(o.widths()));
  if (o.in_channels() <= 0 || o.convs_per_stage() <= 0 || o.feature_dim() <= 0 ||
      o.num_classes() < 2 || o.dropout() < 0 || o.dropout() >= 1)
    fail("classifier",
         "expected in_channels > 0, convs_per_stage > 0, feature_dim > 0, num_classes >= 2, "
         "dropout in [0, 1), got {}, {}, {}, {}, {}",
         o.in_channels(), o.convs_per_stage(), o.feature_dim(), o.num_classes(), o.dropout());
  // Each stage halves the map (floor): 28 -> 14 -> 7 -> 3.
  int64_t size = o.image_size();
  for (size_t i = 0; i < o.widths().size(); ++i) size /= 2;
  if (size < 1)
    fail("classifier", "image_size {} is too small for {} stages (each halves it)", o.image_size(),
         o.widths().size());

  body = torch::nn::Sequential();
  int64_t channels = o.in_channels();
  for (const int64_t width : o.widths()) {
    for (int64_t i = 0; i < o.convs_per_stage(); ++i) {
      body->push_back(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, width, 3).padding(1).bias(false)));
      body->push_back(torch::nn::BatchNorm2d(width));
      body->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
      channels = width;
    }
    body->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  }
  register_module("body", body);
  fc = register_module("fc", torch::nn::Linear(channels * size * size, o.feature_dim()));
  dropout = register_module("dropout", torch::nn::Dropout(o.dropout()));
  head = register_module("head", torch::nn::Linear(o.feature_dim(), o.num_classes()));
}

torch::Tensor ClassifierImpl::prepare(const torch::Tensor& x, const char* where) const {
  if (x.dim() != 4 || x.size(1) != options_.in_channels() || x.size(2) < 1 || x.size(3) < 1)
    fail(where, "expected images [N, {}, H, W], got {}", options_.in_channels(),
         shape_str(x.sizes()));
  const int64_t s = options_.image_size();
  if (x.size(2) == s && x.size(3) == s) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{s, s})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  const auto h = body->forward(prepare(x, "classifier::features"));  // [N, C', S/f, S/f]
  return torch::relu(fc(h.flatten(1)));                              // [N, feature_dim]
}

torch::Tensor ClassifierImpl::classify(const torch::Tensor& features) {
  return head(dropout(features));  // [N, num_classes]
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  return classify(features(x));
}

TrainOutput ClassifierImpl::train_batch(const Batch& batch) {
  const auto& labels = batch.labels;
  const int64_t n = batch.images.defined() ? batch.images.size(0) : 0;
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != n || n == 0)
    fail("classifier::train_batch", "expected labels [{}] int64 with the images, got {}", n,
         labels.defined() ? shape_str(labels.sizes()) : "none");
  if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= options_.num_classes())
    fail("classifier::train_batch",
         "labels must lie in [0, {}) (a dataset without labels gives -1), got [{}, {}]",
         options_.num_classes(), labels.min().item<int64_t>(), labels.max().item<int64_t>());
  auto x = batch.images;
  if (options_.random_flip() && is_training()) {
    const auto flip =
        torch::rand({n, 1, 1, 1}, torch::TensorOptions().device(x.device())) < 0.5;  // [N,1,1,1]
    x = torch::where(flip, x.flip({3}), x);
  }
  const auto logits = forward(x);  // [N, num_classes]
  const auto target = labels.to(torch::kLong);
  TrainOutput out;
  out.loss = F::cross_entropy(logits, target);
  const double accuracy = (logits.argmax(1) == target).to(torch::kFloat64).mean().item<double>();
  out.logs["loss_ce"] = out.loss.item<double>();
  out.logs["loss"] = out.logs["loss_ce"];
  out.logs["accuracy"] = accuracy;
  return out;
}

Json ClassifierImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
