// GPT prior: causality by perturbation, KV-cached sampling identical to uncached, windowed and
// conditional sampling, training on a toy distribution, round trip and errors.
#include <gtest/gtest.h>

#include "io/state_dict.h"
#include "models/model_test_util.h"
#include "priors/gpt.h"
#include "priors/prior_registry.h"
#include "priors/prior_test_util.h"

namespace lf {
namespace {

GPT tiny_gpt(int64_t classes = 0, int64_t cond_codes = 0, std::vector<int64_t> grid = {4, 5}) {
  auto options =
      GPTOptions().num_codes(11).grid(grid).num_classes(classes).n_layer(2).n_head(2).n_embd(32);
  if (cond_codes > 0) options.cond_num_codes(cond_codes).cond_grid(grid);
  GPT model(options);
  model->eval();
  return model;
}

using test::condition;

TEST(GPT, OutputAtEachPositionDependsOnlyOnEarlierCodes) {
  torch::manual_seed(0);
  for (auto model : {tiny_gpt(), tiny_gpt(3, 7)}) {
    const auto cond = condition(model, 2);
    const auto codes = torch::randint(11, {2, 4, 5});
    const auto base = model->logits(codes, cond).reshape({2, 11, 20});
    for (int64_t p = 0; p < 20; ++p) {
      auto changed = codes.clone().reshape({2, 20});
      changed.select(1, p).add_(1).remainder_(11);
      const auto out = model->logits(changed.reshape({2, 4, 5}), cond).reshape({2, 11, 20});
      const auto diff = (out - base).abs().amax({0, 1});  // [20]
      for (int64_t q = 0; q < 20; ++q) {
        if (q <= p)
          EXPECT_LT(diff[q].item<float>(), 1e-6) << "logits at " << q << " read code " << p;
        else
          EXPECT_GT(diff[q].item<float>(), 1e-5) << "logits at " << q << " ignore code " << p;
      }
    }
  }
}

TEST(GPT, ConditionChangesEveryOutput) {
  torch::manual_seed(1);
  auto model = tiny_gpt(3, 7);
  auto cond = condition(model, 2);
  const auto codes = torch::randint(11, {2, 4, 5});
  const auto base = model->logits(codes, cond);
  auto other_class = cond;
  other_class.labels = (cond.labels + 1) % 3;
  EXPECT_GT((model->logits(codes, other_class) - base).abs().amax({1}).min().item<float>(), 1e-5);
  auto other_sketch = cond;
  other_sketch.cond_codes = (cond.cond_codes + 1) % 7;
  EXPECT_GT((model->logits(codes, other_sketch) - base).abs().amax({1}).min().item<float>(), 1e-5);
}

TEST(GPT, CachedForwardMatchesFullForward) {
  torch::manual_seed(2);
  auto model = tiny_gpt(3);
  const auto tokens = torch::randint(11, {3, 12});
  const auto positions = torch::arange(12);
  const auto full = model->forward(tokens, positions);
  KVCache cache;
  auto part = model->forward(tokens.slice(1, 0, 5), positions.slice(0, 0, 5), &cache);
  std::vector<torch::Tensor> outs{part};
  for (int64_t t = 5; t < 12; ++t)
    outs.push_back(model->forward(tokens.slice(1, t, t + 1), positions.slice(0, t, t + 1), &cache));
  EXPECT_EQ(cache.length(), 12);
  EXPECT_TRUE(torch::allclose(torch::cat(outs, 1), full, 1e-5, 1e-5));
}

TEST(GPT, KVCachedSamplerGivesExactlyTheUncachedTokens) {
  torch::manual_seed(3);
  for (auto model : {tiny_gpt(), tiny_gpt(3, 7)}) {
    const auto cond = condition(model, 16);
    for (const auto& [top_k, top_p] : std::vector<std::pair<int64_t, double>>{{0, 1.0}, {4, 0.9}}) {
      SamplingOptions options;
      options.top_k = top_k;
      options.top_p = top_p;
      options.kv_cache = true;
      auto g1 = make_generator(42);
      const auto cached = model->sample(16, 4, 5, cond, options, g1);
      options.kv_cache = false;
      auto g2 = make_generator(42);
      const auto uncached = model->sample(16, 4, 5, cond, options, g2);
      EXPECT_TRUE(torch::equal(cached, uncached));
      EXPECT_EQ(cached.sizes(), (std::vector<int64_t>{16, 4, 5}));
      EXPECT_GE(cached.min().item<int64_t>(), 0);
      EXPECT_LT(cached.max().item<int64_t>(), 11);
    }
  }
}

TEST(GPT, SamplesDependOnTheSeedOnly) {
  auto model = tiny_gpt();
  SamplingOptions options;
  auto a = make_generator(1), b = make_generator(1), c = make_generator(2);
  const auto x = model->sample(8, 4, 5, {}, options, a);
  EXPECT_TRUE(torch::equal(x, model->sample(8, 4, 5, {}, options, b)));
  EXPECT_FALSE(torch::equal(x, model->sample(8, 4, 5, {}, options, c)));
}

TEST(GPT, SamplesLargerGridsOfAnyAspectWithASlidingWindow) {
  torch::manual_seed(4);
  auto model = tiny_gpt(3);
  const auto cond = condition(model, 4);
  SamplingOptions options;
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{4, 10}, {9, 5}, {6, 7}}) {
    auto g = make_generator(5);
    const auto codes = model->sample(4, h, w, cond, options, g);
    EXPECT_EQ(codes.sizes(), (std::vector<int64_t>{4, h, w}));
    EXPECT_GE(codes.min().item<int64_t>(), 0);
  }
  options.window_h = 2;  // a shorter window on the training grid
  auto g = make_generator(5);
  EXPECT_EQ(model->sample(4, 4, 5, cond, options, g).sizes(), (std::vector<int64_t>{4, 4, 5}));
  // Image-conditional: the condition grid grows with the code grid.
  auto sketchy = tiny_gpt(0, 7);
  PriorCondition sketch;
  sketch.cond_codes = torch::randint(7, {2, 4, 10});
  auto g2 = make_generator(6);
  EXPECT_EQ(sketchy->sample(2, 4, 10, sketch, {}, g2).sizes(), (std::vector<int64_t>{2, 4, 10}));
  sketch.cond_codes = torch::randint(7, {2, 4, 5});
  test::expect_error([&] { sketchy->sample(2, 4, 10, sketch, {}, g2); }, "condition grid");
}

TEST(GPT, LearnsAClassConditionalPatternAndSamplesIt) {
  torch::manual_seed(5);
  auto model =
      GPT(GPTOptions().num_codes(8).grid({3, 3}).num_classes(2).n_layer(2).n_head(2).n_embd(32));
  // Class 0: codes 0,1,2,...; class 1: all 7.
  const auto pattern0 = torch::arange(9).remainder(8).view({1, 3, 3});
  const auto pattern1 = torch::full({1, 3, 3}, 7, torch::kInt64);
  Batch batch;
  batch.labels = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  batch.codes = torch::cat({pattern0, pattern1, pattern0, pattern1});
  batch.indices = torch::arange(4);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    adam.zero_grad();
    auto out = model->train_batch(batch);
    out.loss.backward();
    adam.step();
    if (step == 0) first = out.logs.at("loss_nll");
    last = out.logs.at("loss_nll");
  }
  EXPECT_NEAR(first, std::log(8.0), 0.3);
  EXPECT_LT(last, 0.05);
  model->eval();
  SamplingOptions greedy;
  greedy.top_k = 1;
  PriorCondition cond;
  cond.labels = torch::tensor({0, 1}, torch::kInt64);
  auto g = make_generator(0);
  const auto samples = model->sample(2, 3, 3, cond, greedy, g);
  EXPECT_TRUE(torch::equal(samples, torch::cat({pattern0, pattern1})));
}

TEST(GPT, SaveLoadRoundTripAndRegistry) {
  auto model = tiny_gpt(3, 7);
  const auto path =
      (std::filesystem::temp_directory_path() / "lf_gpt_round_trip.safetensors").string();
  save_module_safetensors(*model, path);
  auto fresh = tiny_gpt(3, 7);
  load_module_safetensors(*fresh, path, /*strict=*/true);
  const auto cond = condition(model, 2);
  const auto codes = torch::randint(11, {2, 4, 5});
  EXPECT_TRUE(torch::equal(model->logits(codes, cond), fresh->logits(codes, cond)));
  std::filesystem::remove(path);

  auto built = build_model(
      prior_types(), Config(Json{{"type", "gpt"}, {"preset", "fashion"}, {"num_classes", 10}}));
  EXPECT_EQ(built->kind(), "gpt");
  auto gpt = std::dynamic_pointer_cast<GPTImpl>(built);
  ASSERT_TRUE(gpt);
  EXPECT_EQ(gpt->block_size(), 49);
  EXPECT_EQ(gpt->vocab_size(), 256 + 10);
  // taming's key names
  const auto state = module_state(*gpt);
  for (const char* key :
       {"tok_emb.weight", "pos_emb", "blocks.0.ln1.weight", "blocks.0.attn.key.weight",
        "blocks.0.attn.proj.bias", "blocks.3.mlp.2.weight", "ln_f.bias", "head.weight"})
    EXPECT_TRUE(state.count(key)) << key;
}

TEST(GPT, RejectsBadInputsWithClearErrors) {
  auto model = tiny_gpt(3);
  auto cond = condition(model, 2);
  test::expect_error([&] { model->logits(torch::randint(11, {2, 4, 4}), cond); }, "training grid");
  test::expect_error(
      [&] {
        model->logits(torch::full({2, 4, 5}, 11, torch::kInt64), cond);
      },
      "values in [0, 11)");
  test::expect_error([&] { model->logits(torch::randint(11, {2, 4, 5}), {}); }, "labels");
  cond.labels = torch::tensor({0, 5}, torch::kInt64);
  test::expect_error(
      [&] {
        model->logits(torch::randint(11, {2, 4, 5}), cond);
      },
      "classes in [0, 3)");
  SamplingOptions bad;
  bad.temperature = 0;
  auto g = make_generator(0);
  test::expect_error([&] { model->sample(2, 4, 5, condition(model, 2), bad, g); }, "temperature");
  test::expect_error([&] { model->sample(2, 3, 5, condition(model, 2), {}, g); },
                     "at least the training grid");
  SamplingOptions narrow;
  narrow.window_w = 3;
  test::expect_error([&] { model->sample(2, 4, 8, condition(model, 2), narrow, g); },
                     "window width");
  test::expect_error(
      [&] {
        build_model(prior_types(), Config(Json{{"type", "gpt"}, {"n_embd", 30}, {"n_head", 4}}));
      },
      "divisible");
}

}  // namespace
}  // namespace lf
