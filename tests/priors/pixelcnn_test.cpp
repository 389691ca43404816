// Gated PixelCNN prior: no leakage and no blind spot by perturbation, class conditioning, training
// on toy code maps and sampling them back, seeded sampling of any grid, round trip and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/state_dict.h"
#include "models/model_test_util.h"
#include "priors/pixelcnn.h"
#include "priors/prior_registry.h"
#include "priors/prior_test_util.h"

namespace lf {
namespace {

constexpr int64_t kCodes = 11;

// 5x5 kernels reach 2 cells per layer: 4 layers cover every earlier cell of a 6x6 grid.
PixelCNNOptions tiny_options(int64_t classes = 0) {
  return PixelCNNOptions()
      .num_codes(kCodes)
      .grid({6, 6})
      .hidden(16)
      .num_layers(4)
      .kernel_size(5)
      .num_classes(classes)
      .head_hidden(32);
}

PixelCNN eval_model(const PixelCNNOptions& options) {
  PixelCNN model(options);
  model->eval();
  return model;
}

using test::condition;

// Logits [N, K, P] with the code at raster position p changed (+1 mod K) in every sample.
torch::Tensor logits_with_change(PixelCNN& model, const torch::Tensor& codes,
                                 const PriorCondition& cond, int64_t p) {
  const int64_t n = codes.size(0), h = codes.size(1), w = codes.size(2);
  auto changed = codes.clone().view({n, h * w});
  changed.select(1, p).add_(1).remainder_(kCodes);
  return model->logits(changed.view({n, h, w}), cond).reshape({n, kCodes, h * w});
}

TEST(PixelCNN, LogitsNeverSeeTheCurrentOrLaterCodes) {
  torch::manual_seed(0);
  struct Case {
    PixelCNNOptions options;
    int64_t h, w;
  };
  const std::vector<Case> cases = {
      {tiny_options(), 6, 6},
      {tiny_options(3), 6, 6},
      {tiny_options().kernel_size(3).num_layers(3), 6, 6},
      {tiny_options(2).kernel_size(7).num_layers(2), 4, 7},  // not square
  };
  for (const auto& c : cases) {
    auto model = eval_model(c.options);
    const auto cond = condition(model, 2);
    const auto codes = torch::randint(kCodes, {2, c.h, c.w});
    torch::NoGradGuard no_grad;
    const auto base = model->logits(codes, cond).reshape({2, kCodes, c.h * c.w});
    for (int64_t p = 0; p < c.h * c.w; ++p) {
      const auto out = logits_with_change(model, codes, cond, p);
      EXPECT_TRUE(torch::equal(out.slice(2, 0, p + 1), base.slice(2, 0, p + 1)))
          << "a logit at a position <= " << p << " read the code at " << p << " (kernel "
          << c.options.kernel_size() << ", grid " << c.h << "x" << c.w << ")";
    }
  }
}

TEST(PixelCNN, LogitsSeeEveryEarlierCode) {
  torch::manual_seed(1);
  for (int64_t classes : {0, 3}) {
    auto model = eval_model(tiny_options(classes));
    const auto cond = condition(model, 2);
    const auto codes = torch::randint(kCodes, {2, 6, 6});
    torch::NoGradGuard no_grad;
    const auto base = model->logits(codes, cond).reshape({2, kCodes, 36});
    for (int64_t p = 0; p < 35; ++p) {
      const auto out = logits_with_change(model, codes, cond, p);
      const auto diff = (out - base).slice(2, p + 1).abs().amax({0, 1});  // [35 - p]
      for (int64_t q = 0; q < diff.size(0); ++q)
        EXPECT_GT(diff[q].item<float>(), 0.0f)
            << "the logits at " << p + 1 + q << " ignore the code at " << p;
    }
  }
}

TEST(PixelCNN, ClassLabelChangesTheLogitsAndIsRequired) {
  torch::manual_seed(2);
  auto model = eval_model(tiny_options(3));
  const auto codes = torch::randint(kCodes, {2, 6, 6});
  PriorCondition cond;
  cond.labels = torch::tensor({0, 1}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const auto base = model->logits(codes, cond);
  auto other = cond;
  other.labels = torch::tensor({2, 0}, torch::kInt64);
  // Every cell of every sample, the first one (which sees no codes) included.
  EXPECT_GT((model->logits(codes, other) - base).abs().amax({1}).min().item<float>(), 0.0f);
  test::expect_error([&] { model->logits(codes, {}); }, "needs labels");
  auto g = make_generator(0);
  test::expect_error([&] { model->sample(2, 3, 3, {}, {}, g); }, "needs labels");
  // An unconditional model ignores labels.
  auto plain = eval_model(tiny_options());
  EXPECT_TRUE(torch::equal(plain->logits(codes, {}), plain->logits(codes, cond)));
}

// Trains on one batch of toy maps; returns the first and the last loss_nll.
std::pair<double, double> train(PixelCNN& model, const Batch& batch, int steps) {
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  model->train();
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    adam.zero_grad();
    auto out = model->train_batch(batch);
    out.loss.backward();
    adam.step();
    if (step == 0) first = out.logs.at("loss_nll");
    last = out.logs.at("loss_nll");
  }
  model->eval();
  return {first, last};
}

// [N, h, w]: (offset_n + i + j) mod K.
torch::Tensor diagonal_maps(const torch::Tensor& offsets, int64_t h, int64_t w, int64_t k) {
  const auto i = torch::arange(h).view({1, h, 1}), j = torch::arange(w).view({1, 1, w});
  return (offsets.view({-1, 1, 1}) + i + j).remainder(k);
}

TEST(PixelCNN, LearnsToyMapsAndSamplesThemBack) {
  torch::manual_seed(3);
  const int64_t k = 8;
  const auto small = PixelCNNOptions()
                         .num_codes(k)
                         .grid({4, 4})
                         .hidden(32)
                         .num_layers(3)
                         .kernel_size(5)
                         .head_hidden(64);
  SamplingOptions greedy;
  greedy.top_k = 1;

  {  // Unconditional: a random first code, then +1 per step right or down (the rest is implied).
    PixelCNN model(small);
    Batch batch;
    batch.codes = diagonal_maps(torch::arange(32) % k, 4, 4, k);
    batch.indices = torch::arange(32);
    const auto [first, last] = train(model, batch, 80);
    EXPECT_NEAR(first, std::log(double(k)), 0.5);
    EXPECT_LT(last, 0.3 * std::log(double(k)));  // the floor is log(8) / 16 ~ 0.06 log(8)
    auto g = make_generator(0);
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {6, 9}}) {
      const auto samples = model->sample(3, h, w, {}, greedy, g);
      EXPECT_TRUE(torch::equal(samples, diagonal_maps(samples.select(1, 0).select(1, 0), h, w, k)))
          << h << "x" << w << " samples:\n"
          << samples;
    }
  }
  {  // Class-conditional: the class is the first code.
    PixelCNN model(PixelCNNOptions(small).num_classes(k));
    Batch batch;
    batch.labels = torch::arange(32) % k;
    batch.codes = diagonal_maps(batch.labels, 4, 4, k);
    batch.indices = torch::arange(32);
    const auto [first, last] = train(model, batch, 80);
    EXPECT_LT(last, 0.05 * std::log(double(k)));
    PriorCondition cond;
    cond.labels = torch::tensor({0, 3, 5, 7}, torch::kInt64);
    auto g = make_generator(0);
    const auto samples = model->sample(4, 4, 4, cond, greedy, g);
    EXPECT_TRUE(torch::equal(samples, diagonal_maps(cond.labels, 4, 4, k))) << samples;
  }
}

TEST(PixelCNN, SamplesAreSeededInRangeAndOfAnySize) {
  torch::manual_seed(4);
  auto model = eval_model(tiny_options(3));
  const auto cond = condition(model, 3);
  auto g1 = make_generator(7), g2 = make_generator(7), g3 = make_generator(8);
  const auto a = model->sample(3, 6, 6, cond, {}, g1);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 6, 6}));
  EXPECT_EQ(a.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(a, model->sample(3, 6, 6, cond, {}, g2)));
  EXPECT_FALSE(torch::equal(a, model->sample(3, 6, 6, cond, {}, g3)));
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{7, 14}, {1, 1}, {1, 9}, {5, 2}}) {
    const auto s = model->sample(3, h, w, cond, {}, g1);
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, h, w}));
    EXPECT_GE(s.min().item<int64_t>(), 0);
    EXPECT_LT(s.max().item<int64_t>(), kCodes);
  }
  // Sampling leaves the training mode as it was.
  model->train();
  model->sample(1, 2, 2, condition(model, 1), {}, g1);
  EXPECT_TRUE(model->is_training());
}

TEST(PixelCNN, SaveLoadRoundTripOptionsAndRegistry) {
  torch::manual_seed(5);
  auto model = eval_model(tiny_options(3));
  const auto path =
      (std::filesystem::temp_directory_path() / "lf_pixelcnn_round_trip.safetensors").string();
  save_module_safetensors(*model, path);
  torch::manual_seed(6);
  auto fresh = eval_model(tiny_options(3));
  load_module_safetensors(*fresh, path, /*strict=*/true);
  std::filesystem::remove(path);
  const auto codes = torch::randint(kCodes, {2, 6, 6});
  const auto cond = condition(model, 2);
  EXPECT_TRUE(torch::equal(model->logits(codes, cond), fresh->logits(codes, cond)));

  // Options JSON round trip, and the resolved options rebuild the same architecture.
  PixelCNNOptions back;
  from_json(model->options_json(), back);
  EXPECT_EQ(Json(back), model->options_json());
  test::expect_error(
      [] {
        PixelCNNOptions options;
        from_json(Json{{"hiden", 3}}, options);
      },
      "unknown option 'hiden'");

  auto built =
      build_model(prior_types(), Config(Json{{"type", "pixelcnn"}, {"preset", "fashion"}}));
  EXPECT_EQ(built->kind(), "pixelcnn");
  auto pixelcnn = std::dynamic_pointer_cast<PixelCNNImpl>(built);
  ASSERT_TRUE(pixelcnn);
  EXPECT_EQ(pixelcnn->num_codes(), 256);
  EXPECT_EQ(pixelcnn->grid(), (std::vector<int64_t>{7, 7}));
  int64_t count = 0;
  for (const auto& p : pixelcnn->parameters()) count += p.numel();
  EXPECT_EQ(count, 2201600);
  // The reference implementation's key names.
  const auto state = module_state(*pixelcnn);
  for (const char* key :
       {"embedding.weight", "layers.0.vert_stack.weight", "layers.0.vert_to_horiz.bias",
        "layers.11.horiz_stack.weight", "layers.11.horiz_resid.weight", "output_conv.0.weight",
        "output_conv.2.bias"})
    EXPECT_TRUE(state.count(key)) << key;
  auto conditional = std::dynamic_pointer_cast<PixelCNNImpl>(
      build_model(prior_types(),
                  Config(Json{{"type", "pixelcnn"}, {"preset", "fashion"}, {"num_classes", 10}})));
  ASSERT_TRUE(conditional);
  EXPECT_TRUE(module_state(*conditional).count("layers.3.class_cond_embedding.weight"));
}

TEST(PixelCNN, RejectsBadInputsWithClearErrors) {
  auto model = eval_model(tiny_options(3));
  const auto cond = condition(model, 2);
  const auto codes = torch::randint(kCodes, {2, 6, 6});
  test::expect_error(
      [&] {
        model->logits(torch::full({2, 6, 6}, kCodes, torch::kInt64), cond);
      },
      "expected values in [0, 11)");
  test::expect_error([&] { model->logits(codes.view({2, 36}), cond); }, "expected [N, h, w] int64");
  test::expect_error([&] { model->logits(codes.to(torch::kFloat32), cond); }, "int64");
  PriorCondition three;
  three.labels = torch::tensor({0, 1, 2}, torch::kInt64);
  test::expect_error([&] { model->logits(codes, three); }, "labels: expected [2]");
  PriorCondition bad_class;
  bad_class.labels = torch::tensor({0, 3}, torch::kInt64);
  test::expect_error([&] { model->logits(codes, bad_class); }, "classes in [0, 3)");
  auto with_image = cond;
  with_image.cond_codes = codes;
  test::expect_error([&] { model->logits(codes, with_image); }, "no condition image");

  auto g = make_generator(0);
  test::expect_error([&] { model->sample(2, 3, 3, with_image, {}, g); }, "no condition image");
  test::expect_error([&] { model->sample(3, 3, 3, cond, {}, g); }, "labels: expected [3]");
  test::expect_error([&] { model->sample(2, 0, 3, cond, {}, g); }, "expected n, h, w >= 1");
  SamplingOptions cold;
  cold.temperature = 0;
  test::expect_error([&] { model->sample(2, 3, 3, cond, cold, g); }, "temperature");

  test::expect_error([] { PixelCNN bad(tiny_options().kernel_size(4)); }, "kernel_size");
  test::expect_error([] { PixelCNN bad(tiny_options().grid({6})); }, "grid");
  test::expect_error(
      [] {
        build_model(prior_types(), Config(Json{{"type", "pixelcnn"}, {"preset", "mnist"}}));
      },
      "unknown preset 'mnist'");
}

}  // namespace
}  // namespace lf
