// Classifier: shapes, features, resizing, training logs and label errors, learning a separable toy
// problem, save/load, options JSON and the registry.
#include "models/classifier.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/state_dict.h"
#include "models/model_registry.h"
#include "models/model_test_util.h"
#include "models/saved_model.h"

namespace lf {
namespace {

using test::expect_error;
using test::images;

ClassifierOptions tiny() {
  return ClassifierOptions()
      .image_size(16)
      .widths({8, 16})
      .convs_per_stage(1)
      .feature_dim(32)
      .num_classes(4);
}

Batch batch_of(const torch::Tensor& x, const torch::Tensor& labels) {
  Batch batch;
  batch.images = x;
  batch.labels = labels;
  batch.indices = torch::arange(x.size(0));
  return batch;
}

TEST(Classifier, ShapesOfLogitsAndFeatures) {
  Classifier model(classifier_preset("fashion"));
  model->eval();
  const auto x = images(3, 1, 28, 28);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{3, 10}));
  const auto f = model->features(x);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 256}));
  EXPECT_GE(f.min().item<double>(), 0.0);  // after the ReLU
  // In eval mode (no dropout) the logits are the head applied to the features.
  EXPECT_TRUE(torch::allclose(model->classify(f), model->forward(x)));
}

TEST(Classifier, ResizesOtherSizesToItsOwn) {
  Classifier model(classifier_preset("fashion"));
  model->eval();
  torch::NoGradGuard no_grad;
  for (auto [h, w] : {std::pair{32, 32}, std::pair{20, 36}}) {
    EXPECT_EQ(model->features(images(2, 1, h, w)).sizes(), (std::vector<int64_t>{2, 256}));
    EXPECT_EQ(model->forward(images(2, 1, h, w)).sizes(), (std::vector<int64_t>{2, 10}));
  }
  // A 32-px image is scored as its bilinear 28-px version.
  const auto x32 = images(2, 1, 32, 32);
  namespace F = torch::nn::functional;
  const auto x28 = F::interpolate(x32, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{28, 28})
                                           .mode(torch::kBilinear)
                                           .align_corners(false));
  EXPECT_TRUE(torch::allclose(model->features(x32), model->features(x28)));
  expect_error([&] { model->forward(images(2, 3, 28, 28)); }, "[classifier::features]");
  expect_error([&] { model->features(torch::zeros({28, 28})); }, "expected images [N, 1, H, W]");
}

TEST(Classifier, TrainBatchLogsAndChecksLabels) {
  Classifier model(tiny());
  const auto x = images(6, 1, 16, 16);
  const auto out = model->train_batch(batch_of(x, torch::tensor({0, 1, 2, 3, 0, 1})));
  for (const char* key : {"loss", "loss_ce", "accuracy"}) EXPECT_TRUE(out.logs.count(key)) << key;
  EXPECT_NEAR(out.logs.at("loss_ce"), out.loss.item<double>(), 1e-6);
  EXPECT_NEAR(out.logs.at("loss_ce"), std::log(4.0), 1.0);  // near chance at init
  EXPECT_GE(out.logs.at("accuracy"), 0.0);
  EXPECT_LE(out.logs.at("accuracy"), 1.0);
  expect_error([&] { model->train_batch(batch_of(x, torch::Tensor())); }, "expected labels [6]");
  expect_error([&] { model->train_batch(batch_of(x, torch::full({6}, -1, torch::kLong))); },
               "without labels gives -1");
  expect_error([&] { model->train_batch(batch_of(x, torch::full({6}, 4, torch::kLong))); },
               "[0, 4)");
  expect_error([&] { model->train_batch(batch_of(x, torch::zeros({5}, torch::kLong))); },
               "[classifier::train_batch]");
}

// Four classes: which quadrant of the image holds a bright square (with noise elsewhere).
std::pair<torch::Tensor, torch::Tensor> quadrants(int64_t n) {
  const auto labels = torch::randint(0, 4, {n}, torch::kLong);
  auto x = torch::randn({n, 1, 16, 16}) * 0.3 - 0.5;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = labels[i].item<int64_t>();
    x[i].slice(1, (c / 2) * 8, (c / 2) * 8 + 8).slice(2, (c % 2) * 8, (c % 2) * 8 + 8) += 1.5;
  }
  return {x.clamp(-1, 1), labels};
}

TEST(Classifier, LearnsASeparableToyProblem) {
  torch::manual_seed(0);
  Classifier model(tiny());
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(5e-3));
  for (int step = 0; step < 40; ++step) {
    const auto [x, y] = quadrants(32);
    adam.zero_grad();
    auto out = model->train_batch(batch_of(x, y));
    out.loss.backward();
    adam.step();
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const auto [x, y] = quadrants(200);
  const double accuracy =
      (model->forward(x).argmax(1) == y).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(accuracy, 0.95);
}

TEST(Classifier, RandomFlipChangesTrainingInputsOnly) {
  torch::manual_seed(1);
  const auto x = images(16, 1, 16, 16);
  const auto y = torch::zeros({16}, torch::kLong);
  auto loss_twice = [&](Classifier& model) {
    return std::pair{model->train_batch(batch_of(x, y)).logs.at("loss_ce"),
                     model->train_batch(batch_of(x, y)).logs.at("loss_ce")};
  };
  Classifier plain(tiny().dropout(0));
  const auto [a, b] = loss_twice(plain);  // training mode, no dropout, no flips: deterministic
  EXPECT_DOUBLE_EQ(a, b);
  Classifier flipping(tiny().dropout(0).random_flip(true));
  const auto [c, d] = loss_twice(flipping);  // other flips the second time (p = 1 - 2^-16)
  EXPECT_NE(c, d);
  flipping->eval();
  const auto [e, f] = loss_twice(flipping);  // eval mode: no flips
  EXPECT_DOUBLE_EQ(e, f);
}

TEST(Classifier, SaveLoadRoundTrip) {
  Classifier model(tiny());
  // A few training steps so the batch-norm running statistics are not their defaults.
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (int step = 0; step < 3; ++step) {
    const auto [x, y] = quadrants(8);
    adam.zero_grad();
    model->train_batch(batch_of(x, y)).loss.backward();
    adam.step();
  }
  const std::string path = ::testing::TempDir() + "/classifier_round_trip.safetensors";
  save_module_safetensors(*model, path);
  Classifier fresh(tiny());
  const auto report = load_module_safetensors(*fresh, path, /*strict=*/true);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty()) << report.summary();
  model->eval();
  fresh->eval();
  torch::NoGradGuard no_grad;
  const auto x = images(4, 1, 16, 16);
  EXPECT_TRUE(torch::equal(model->forward(x), fresh->forward(x)));
  EXPECT_TRUE(torch::equal(model->features(x), fresh->features(x)));
  std::filesystem::remove(path);
}

TEST(Classifier, KeysAndParameterCount) {
  Classifier model(classifier_preset("fashion"));
  const auto state = module_state(*model);
  for (const char* key :
       {"body.0.weight", "body.1.running_mean", "fc.weight", "fc.bias", "head.weight", "head.bias"})
    EXPECT_TRUE(state.count(key)) << key;
  EXPECT_EQ(state.at("fc.weight").sizes(), (std::vector<int64_t>{256, 128 * 3 * 3}));
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  EXPECT_EQ(params, 584618);  // ~0.58 M: the number in docs/generation_metrics.md
}

TEST(Classifier, OptionsJsonAndRegistry) {
  const auto options = tiny().dropout(0.1).random_flip(true);
  Json json = options;
  ClassifierOptions back;
  from_json(json, back);
  EXPECT_EQ(Json(back), json);
  expect_error([&] { from_json(Json{{"widht", 3}}, back); }, "widht");
  expect_error([] { classifier_preset("mnist"); }, "fashion");
  expect_error([] { Classifier(ClassifierOptions().widths({})); }, "widths");
  expect_error([] { Classifier(ClassifierOptions().image_size(4)); }, "too small");
  expect_error([] { Classifier(ClassifierOptions().num_classes(1)); }, "num_classes >= 2");

  auto model =
      build_model(image_model_types(),
                  Config(Json{{"type", "classifier"}, {"preset", "fashion"}, {"feature_dim", 64}}));
  EXPECT_EQ(model->kind(), "classifier");
  auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(model);
  ASSERT_TRUE(classifier);
  EXPECT_EQ(classifier->options().feature_dim(), 64);
  EXPECT_TRUE(classifier->options().random_flip());
  // The run config's model section builds the same model again.
  auto again = std::dynamic_pointer_cast<ClassifierImpl>(
      build_model(image_model_types(), Config(model_config_json(*classifier))));
  ASSERT_TRUE(again);
  EXPECT_EQ(Json(again->options()), Json(classifier->options()));
  expect_error(
      [] {
        make_model(Config(Json{{"type", "classifier"}}));
      },
      "not an image autoencoder");
}

}  // namespace
}  // namespace lf
