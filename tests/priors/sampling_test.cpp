// Token sampling: temperature, top-k and top-p filtering and seeded draws.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "priors/sampling.h"

namespace lf {
namespace {

TEST(Sampling, TopKKeepsTheKMostLikelyTokens) {
  SamplingOptions o;
  o.top_k = 2;
  const auto probs = filtered_probabilities(torch::tensor({{1.0f, 3.0f, 2.0f, 0.0f}}), o);
  EXPECT_EQ(probs[0][0].item<float>(), 0);
  EXPECT_EQ(probs[0][3].item<float>(), 0);
  EXPECT_NEAR(probs[0][1].item<float>(), std::exp(1.0) / (1 + std::exp(1.0)), 1e-6);
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  SamplingOptions o;
  const auto logits = torch::log(torch::tensor({{0.1f, 0.5f, 0.3f, 0.1f}}));
  o.top_p = 0.7;  // 0.5 + 0.3 reaches it
  auto probs = filtered_probabilities(logits, o);
  EXPECT_NEAR(probs[0][1].item<float>(), 0.625, 1e-6);
  EXPECT_NEAR(probs[0][2].item<float>(), 0.375, 1e-6);
  EXPECT_EQ(probs[0][0].item<float>() + probs[0][3].item<float>(), 0);
  o.top_p = 0.4;  // the most likely token alone
  probs = filtered_probabilities(logits, o);
  EXPECT_NEAR(probs[0][1].item<float>(), 1.0, 1e-6);
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  SamplingOptions cold, hot;
  cold.temperature = 0.5;
  hot.temperature = 2.0;
  const auto logits = torch::tensor({{0.0f, 1.0f}});
  const float plain = torch::softmax(logits, 1)[0][1].item<float>();
  EXPECT_GT(filtered_probabilities(logits, cold)[0][1].item<float>(), plain);
  EXPECT_LT(filtered_probabilities(logits, hot)[0][1].item<float>(), plain);
}

TEST(Sampling, DrawsFollowTheSeedAndTheProbabilities) {
  const auto logits = torch::log(torch::tensor({0.2f, 0.8f})).repeat({4000, 1});
  SamplingOptions o;
  auto a = make_generator(7), b = make_generator(7);
  const auto x = sample_tokens(logits, o, a);
  EXPECT_TRUE(torch::equal(x, sample_tokens(logits, o, b)));
  EXPECT_NEAR(x.to(torch::kFloat64).mean().item<double>(), 0.8, 0.03);
  o.top_k = 1;
  EXPECT_EQ(sample_tokens(logits, o, a).min().item<int64_t>(), 1);
}

TEST(Sampling, RejectsOutOfRangeOptions) {
  SamplingOptions o;
  o.top_p = 0;
  test::expect_error([&] { o.validate("t"); }, "top_p");
  o = {};
  o.top_k = -1;
  test::expect_error([&] { o.validate("t"); }, "top_k");
  o = {};
  o.temperature = -1;
  test::expect_error([&] { o.validate("t"); }, "temperature");
}

}  // namespace
}  // namespace lf
