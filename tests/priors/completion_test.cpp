// Image completion and progress reports of the priors' samplers (GPT whole-grid with and without
// the KV cache, GPT sliding window, PixelCNN): given cells are kept exactly, the rest drawn as
// usual, and on_progress sees the maps so far with the cells not generated yet at -1.
#include <gtest/gtest.h>

#include <functional>

#include "models/model_test_util.h"
#include "priors/gpt.h"
#include "priors/pixelcnn.h"

namespace lf {
namespace {

constexpr int64_t kCompletionCodes = 9;

PriorPtr completion_gpt() {
  torch::manual_seed(11);
  GPT model(GPTOptions().num_codes(kCompletionCodes).grid({4, 5}).n_layer(2).n_head(2).n_embd(32));
  model->eval();
  return model.ptr();
}

PriorPtr completion_pixelcnn() {
  torch::manual_seed(12);
  PixelCNN model(PixelCNNOptions()
                     .num_codes(kCompletionCodes)
                     .grid({4, 6})
                     .hidden(16)
                     .num_layers(3)
                     .kernel_size(3));
  model->eval();
  return model.ptr();
}

struct Case {
  const char* name;
  std::function<PriorPtr()> make;
  int64_t h, w;
  bool kv_cache;
};

std::vector<Case> completion_cases() {
  return {{"gpt", completion_gpt, 4, 5, true},
          {"gpt without cache", completion_gpt, 4, 5, false},
          {"gpt sliding window", completion_gpt, 6, 5, true},
          {"pixelcnn", completion_pixelcnn, 4, 6, true}};
}

TEST(PriorCompletion, KeepsTheGivenCellsAndDrawsTheRest) {
  for (const auto& c : completion_cases()) {
    SCOPED_TRACE(c.name);
    auto prior = c.make();
    const int64_t n = 3, cells = c.h * c.w;
    SamplingOptions options;
    options.kv_cache = c.kv_cache;
    options.given = torch::randint(kCompletionCodes, {1, c.h, c.w}, torch::kInt64);
    options.given_cells = 7;
    auto g = make_generator(3);
    const auto codes = prior->sample(n, c.h, c.w, {}, options, g).view({n, cells});
    const auto given = options.given.view({1, cells}).expand({n, cells});
    EXPECT_TRUE(torch::equal(codes.slice(1, 0, 7), given.slice(1, 0, 7)));
    EXPECT_GE(codes.min().item<int64_t>(), 0);
    // Everything given: the map itself; nothing given: the plain sampler, draw for draw.
    options.given_cells = cells;
    auto g2 = make_generator(3);
    EXPECT_TRUE(torch::equal(prior->sample(n, c.h, c.w, {}, options, g2).view({n, cells}), given));
    options.given_cells = 0;
    SamplingOptions plain;
    plain.kv_cache = c.kv_cache;
    auto g3 = make_generator(4), g4 = make_generator(4);
    EXPECT_TRUE(torch::equal(prior->sample(n, c.h, c.w, {}, options, g3),
                             prior->sample(n, c.h, c.w, {}, plain, g4)));
  }
}

TEST(PriorCompletion, ReportsProgressWithTheCellsNotYetDrawnAtMinusOne) {
  for (const auto& c : completion_cases()) {
    SCOPED_TRACE(c.name);
    auto prior = c.make();
    const int64_t cells = c.h * c.w;
    SamplingOptions options;
    options.kv_cache = c.kv_cache;
    options.progress_every = 4;
    std::vector<int64_t> reported;
    options.on_progress = [&](const torch::Tensor& so_far, int64_t done) {
      reported.push_back(done);
      const auto flat = so_far.reshape({so_far.size(0), -1});
      ASSERT_EQ(flat.size(1), cells);
      EXPECT_GE(flat.slice(1, 0, done).min().item<int64_t>(), 0);
      if (done < cells) {
        EXPECT_EQ(flat.slice(1, done).max().item<int64_t>(), -1);
      }
    };
    auto g = make_generator(5);
    const auto codes = prior->sample(2, c.h, c.w, {}, options, g);
    std::vector<int64_t> expected;
    for (int64_t d = 4; d < cells; d += 4) expected.push_back(d);
    expected.push_back(cells);
    EXPECT_EQ(reported, expected);
    // A report may stop the sampler (the server's Cancel).
    options.on_progress = [](const torch::Tensor&, int64_t done) {
      if (done >= 8) throw std::runtime_error("cancelled");
    };
    auto g2 = make_generator(5);
    EXPECT_THROW(prior->sample(2, c.h, c.w, {}, options, g2), std::runtime_error);
  }
}

TEST(PriorCompletion, RejectsGivenCodesThatDoNotFit) {
  auto prior = completion_gpt();
  SamplingOptions options;
  auto g = make_generator(1);
  options.given = torch::randint(kCompletionCodes, {1, 3, 5}, torch::kInt64);
  options.given_cells = 2;
  test::expect_error([&] { prior->sample(2, 4, 5, {}, options, g); }, "given codes");
  options.given = torch::full({1, 4, 5}, kCompletionCodes, torch::kInt64);
  test::expect_error([&] { prior->sample(2, 4, 5, {}, options, g); }, "given codes");
  options.given = torch::zeros({1, 4, 5}, torch::kInt64);
  options.given_cells = 21;
  test::expect_error([&] { prior->sample(2, 4, 5, {}, options, g); }, "given cells");
}

}  // namespace
}  // namespace lf
