// Frechet distance against closed forms and an independent reference, its invariances and errors;
// then the sample scores built on it (eval/sample_score.h) with a small classifier and in-memory
// data.
#include "eval/frechet_distance.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/idx_dataset.h"
#include "eval/sample_score.h"

namespace lf {
namespace {

FeatureStats stats(const torch::Tensor& mean, const torch::Tensor& cov) {
  return {mean.to(torch::kFloat64), cov.to(torch::kFloat64), 100};
}

torch::Tensor matrix(std::vector<double> values, int64_t d) {
  return torch::tensor(values, torch::kFloat64).reshape({d, d});
}

TEST(FrechetDistance, FeatureStatsAreMeanAndUnbiasedCovariance) {
  const auto x = torch::tensor({1.0, 2.0, 3.0, 5.0, 2.0, 8.0}).reshape({3, 2});
  const auto s = feature_stats(x.to(torch::kFloat32));
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.mean.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(s.mean, torch::tensor({2.0, 5.0}, torch::kFloat64)));
  // Column 0: 1, 3, 2 (var 1); column 1: 2, 5, 8 (var 9); cov = ((-1)(-3) + (1)(0) + (0)(3)) / 2.
  EXPECT_TRUE(torch::allclose(s.cov, matrix({1.0, 1.5, 1.5, 9.0}, 2)));
  EXPECT_THROW(feature_stats(torch::zeros({1, 4})), Error);
  EXPECT_THROW(feature_stats(torch::zeros({4})), Error);
}

TEST(FrechetDistance, IdenticalStatsAreZero) {
  torch::manual_seed(0);
  const auto s = feature_stats(torch::randn({500, 16}) * 3 + 1);
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-9);
}

TEST(FrechetDistance, OneDimensionalClosedForm) {
  // N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
  const auto a = stats(torch::tensor({1.5}), torch::tensor({{4.0}}));
  const auto b = stats(torch::tensor({-0.5}), torch::tensor({{0.25}}));
  EXPECT_NEAR(frechet_distance(a, b), 4.0 + 1.5 * 1.5, 1e-12);
}

TEST(FrechetDistance, DiagonalClosedForm) {
  // Commuting (diagonal) covariances: sum (mu_a - mu_b)^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  const auto a = stats(torch::tensor({0.0, 1.0, 2.0}), torch::diag(torch::tensor({1.0, 4.0, 9.0})));
  const auto b = stats(torch::tensor({1.0, 1.0, 0.0}), torch::diag(torch::tensor({4.0, 1.0, 0.0})));
  EXPECT_NEAR(frechet_distance(a, b), (1 + 0 + 4) + (1 + 1 + 9), 1e-12);
}

TEST(FrechetDistance, NonCommutingCovariancesMatchAnIndependentReference) {
  const auto a = stats(torch::tensor({1.0, 0.0, -1.0}), matrix({4, 1, 0, 1, 3, 1, 0, 1, 2}, 3));
  const auto b =
      stats(torch::tensor({0.5, 2.0, 0.0}), matrix({2, -1, 0.5, -1, 3, 0, 0.5, 0, 1}, 3));
  // Computed with python3 (no numpy/scipy here): the Denman-Beavers iteration for sqrtm of the
  // non-symmetric product Ca Cb in 60-digit decimal arithmetic (residual |Y^2 - Ca Cb| ~ 1e-58);
  // FD = 5.25 + tr(Ca) + tr(Cb) - 2 tr(sqrtm(Ca Cb)), tr(sqrtm(Ca Cb)) = 6.721909383961151.
  EXPECT_NEAR(frechet_distance(a, b), 6.806181232077698, 1e-10);
  EXPECT_NEAR(frechet_distance(b, a), 6.806181232077698, 1e-10);  // symmetric
}

TEST(FrechetDistance, InvariantUnderARotationOfBothSets) {
  torch::manual_seed(1);
  const auto x = torch::randn({300, 6}, torch::kFloat64);
  const auto y = torch::randn({200, 6}, torch::kFloat64) * torch::linspace(0.5, 2.0, 6) + 0.3;
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({6, 6}, torch::kFloat64)));
  const double fd = frechet_distance(feature_stats(x), feature_stats(y));
  const double rotated = frechet_distance(feature_stats(x.matmul(q)), feature_stats(y.matmul(q)));
  EXPECT_GT(fd, 0.5);
  EXPECT_NEAR(rotated, fd, 1e-9 * fd);
}

TEST(FrechetDistance, RankDeficientCovariancesStayFinite) {
  // 3 samples in 8 dimensions: singular covariances, where a general sqrtm can go complex.
  torch::manual_seed(2);
  const double fd = frechet_distance(feature_stats(torch::randn({3, 8})),
                                     feature_stats(torch::randn({3, 8}) + 1));
  EXPECT_TRUE(std::isfinite(fd));
  EXPECT_GT(fd, 0.0);
}

TEST(FrechetDistance, MismatchedDimensionsAreAnError) {
  const auto a = feature_stats(torch::randn({10, 4}));
  const auto b = feature_stats(torch::randn({10, 5}));
  try {
    frechet_distance(a, b);
    ADD_FAILURE() << "expected lf::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("feature dimensions differ: 4 vs 5"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(frechet_distance(a, FeatureStats{}), Error);
}

// ---- Sample scores (eval/sample_score.h) --------------------------------------------------------

ClassifierOptions tiny() {
  return ClassifierOptions().widths({8, 16}).convs_per_stage(1).feature_dim(16);
}

// 64 random 28x28 "images" with labels 0..9, held in memory.
std::shared_ptr<IdxDataset> tiny_dataset() {
  torch::manual_seed(3);
  return std::make_shared<IdxDataset>(torch::randint(0, 256, {64, 1, 28, 28}, torch::kUInt8),
                                      torch::arange(64) % 10, "tiny");
}

torch::Tensor all_images(const Dataset& data) {
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < data.size(); ++i) indices.push_back(i);
  return data.get_batch(indices).images;
}

TEST(SampleScore, RealImagesScoredAgainstThemselves) {
  Classifier model(tiny());
  const auto data = tiny_dataset();
  const auto report = classifier_report(*model, *data, torch::kCPU, 16);
  EXPECT_EQ(report.at("images"), 64);
  EXPECT_EQ(report.at("per_class_accuracy").size(), 10u);
  EXPECT_EQ(report.at("class_names").size(), 10u);
  EXPECT_TRUE(model->is_training());  // the mode is restored

  ScoreOptions options;
  options.batch_size = 20;  // not a divisor of 64: the last batch is short
  options.real_halves = true;
  const auto json =
      score_samples(*model, all_images(*data), torch::arange(64) % 10, *data, torch::kCPU, options);
  EXPECT_EQ(json.at("n"), 64);
  EXPECT_EQ(json.at("real_n"), 64);
  EXPECT_NEAR(json.at("frechet_distance").get<double>(), 0.0, 1e-6);
  // Accuracy on the samples' labels is the classifier's accuracy on the same images.
  EXPECT_NEAR(json.at("accuracy").get<double>(), report.at("accuracy").get<double>(), 1e-12);
  EXPECT_EQ(json.at("per_class_accuracy"), report.at("per_class_accuracy"));
  int64_t total = 0;
  for (const auto& count : json.at("predicted_classes")) total += count.get<int64_t>();
  EXPECT_EQ(total, 64);
  EXPECT_GT(json.at("fd_real_halves").get<double>(), 0.0);
  EXPECT_NEAR(score_real_halves(*model, *data, torch::kCPU).at("fd_real_halves").get<double>(),
              json.at("fd_real_halves").get<double>(),
              1e-5 * json.at("fd_real_halves").get<double>());  // float32 features, other batches
}

TEST(SampleScore, UnlabelledAndResizedSamples) {
  Classifier model(tiny());
  const auto data = tiny_dataset();
  const auto samples = torch::rand({10, 1, 32, 32}) * 2 - 1;
  const auto json = score_samples(*model, samples, torch::Tensor(), *data, torch::kCPU);
  EXPECT_EQ(json.at("n"), 10);
  EXPECT_FALSE(json.contains("accuracy"));
  EXPECT_FALSE(json.contains("fd_real_halves"));
  EXPECT_GT(json.at("frechet_distance").get<double>(), 0.0);
}

TEST(SampleScore, BadSamplesAndLabelsAreClearErrors) {
  Classifier model(tiny());
  const auto data = tiny_dataset();
  const auto x = torch::zeros({8, 1, 28, 28});
  auto expect = [&](const torch::Tensor& samples, const torch::Tensor& labels, const char* part) {
    try {
      score_samples(*model, samples, labels, *data, torch::kCPU);
      ADD_FAILURE() << "expected lf::Error containing " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect(torch::zeros({8, 3, 28, 28}), torch::Tensor(), "expected images [N, 1, H, W]");
  expect(torch::zeros({1, 1, 28, 28}), torch::Tensor(), "at least 2 images");
  expect(x * 255 + 10, torch::Tensor(), "expected images in [-1, 1]");
  expect(x, torch::zeros({7}, torch::kLong), "labels: expected [8] int64");
  expect(x, torch::full({8}, 10, torch::kLong), "classes in [0, 10)");
  expect(x, torch::zeros({8}, torch::kFloat32), "labels: expected [8] int64");
}

}  // namespace
}  // namespace lf
