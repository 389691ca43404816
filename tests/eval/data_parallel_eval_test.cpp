// The evaluations a data-parallel run makes at its end (an autoencoder's metrics, a classifier's
// report, a prior's test likelihood): split over 2 and 3 ranks (threads of this process standing
// in for processes, tests/core/thread_ranks.h) they equal one process's, on every rank.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/thread_ranks.h"
#include "data/idx_dataset.h"
#include "eval/evaluate.h"
#include "eval/prior_report.h"
#include "eval/sample_score.h"
#include "models/vqvae.h"
#include "priors/code_dataset.h"
#include "priors/pixelcnn.h"

namespace lf {
namespace {

// 50 labelled 28x28 images: with batches of 8 the last is short, and 3 ranks get 3, 2 and 2.
std::shared_ptr<IdxDataset> labelled_images(int64_t label_offset = 0) {
  torch::manual_seed(5);
  return std::make_shared<IdxDataset>(torch::randint(0, 256, {50, 1, 28, 28}, torch::kUInt8),
                                      torch::arange(50) % 10 + label_offset, "labelled");
}

// One model per rank, all with the same weights (ranks never share a module's mode flags).
template <typename Model, typename Options>
std::vector<Model> copies(const Options& options, int n) {
  std::vector<Model> models;
  for (int i = 0; i < n; ++i) {
    torch::manual_seed(11);
    models.emplace_back(options);
  }
  return models;
}

TEST(DataParallelEval, ClassifierReportOverRanksEqualsOneProcess) {
  const auto options = ClassifierOptions().widths({8, 16}).convs_per_stage(1).feature_dim(16);
  const auto data = labelled_images();
  auto one = copies<Classifier>(options, 1);
  const Json alone = classifier_report(*one[0], *data, torch::kCPU, 8, 45);
  EXPECT_EQ(alone.at("images"), 45);
  EXPECT_FALSE(alone.contains("processes"));
  for (int world : {2, 3}) {
    SCOPED_TRACE(world);
    auto models = copies<Classifier>(options, world);
    std::vector<Json> reports(world);
    test::ThreadRanks ranks(world);
    ranks.run([&](int rank) {
      reports[rank] = classifier_report(*models[rank], *data, torch::kCPU, 8, 45);
    });
    for (const auto& report : reports) {
      EXPECT_EQ(report.at("processes"), world);
      EXPECT_EQ(report.at("images"), 45);
      EXPECT_EQ(report.at("accuracy"), alone.at("accuracy"));  // counts: exact
      EXPECT_EQ(report.at("per_class_accuracy"), alone.at("per_class_accuracy"));
      EXPECT_NEAR(report.at("loss_ce").get<double>(), alone.at("loss_ce").get<double>(),
                  1e-12 * alone.at("loss_ce").get<double>());
      EXPECT_EQ(report, reports[0]);  // every rank holds the same report
    }
  }
}

TEST(DataParallelEval, LabelsOutOfRangeFailOnEveryRankAlike) {
  const auto options = ClassifierOptions().widths({8, 16}).convs_per_stage(1).feature_dim(16);
  const auto data = labelled_images(/*label_offset=*/1);  // labels 1..10 with 10 classes
  auto models = copies<Classifier>(options, 2);
  std::vector<std::string> errors(2);
  test::ThreadRanks ranks(2);
  ranks.run([&](int rank) {
    try {
      classifier_report(*models[rank], *data, torch::kCPU, 8);
    } catch (const Error& e) {
      errors[rank] = e.what();
    }
  });
  for (const auto& error : errors)
    EXPECT_NE(error.find("labels in [1, 10]; expected classes in [0, 10)"), std::string::npos)
        << error;
}

TEST(DataParallelEval, PriorLikelihoodOverRanksEqualsOneProcess) {
  const auto options =
      PixelCNNOptions().num_codes(11).grid({6, 6}).hidden(16).num_layers(2).head_hidden(16);
  torch::manual_seed(7);
  const CodeDataset codes(torch::randint(11, {37, 6, 6}), torch::full({37}, -1, torch::kInt64),
                          torch::Tensor(), 0, "codes");
  auto one = copies<PixelCNN>(options, 1);
  const double alone = prior_nll(*one[0], codes, torch::kCPU, 8);
  EXPECT_GT(alone, 0.0);
  for (int world : {2, 3}) {
    SCOPED_TRACE(world);
    auto models = copies<PixelCNN>(options, world);
    std::vector<double> nll(world);
    test::ThreadRanks ranks(world);
    ranks.run([&](int rank) { nll[rank] = prior_nll(*models[rank], codes, torch::kCPU, 8); });
    for (double value : nll) {
      EXPECT_NEAR(value, alone, 1e-12 * alone);
      EXPECT_EQ(value, nll[0]);
    }
  }
}

TEST(DataParallelEval, AutoencoderMetricsOverRanksEqualOneProcess) {
  auto options = VQVAEOptions().hidden({16, 32}).num_res_blocks(1);
  options.quantizer().num_codes(32).code_dim(8);
  const auto data = labelled_images();
  auto one = copies<VQVAE>(options, 1);
  const EvalResult alone = evaluate(*one[0], *data, torch::kCPU, 8);
  EXPECT_EQ(alone.images, 50);
  for (int world : {2, 3}) {
    SCOPED_TRACE(world);
    auto models = copies<VQVAE>(options, world);
    std::vector<EvalResult> results(world);
    test::ThreadRanks ranks(world);
    ranks.run([&](int rank) { results[rank] = evaluate(*models[rank], *data, torch::kCPU, 8); });
    for (const auto& result : results) {
      EXPECT_EQ(result.processes, world);
      EXPECT_EQ(result.images, 50);
      EXPECT_NEAR(result.mse, alone.mse, 1e-6 * alone.mse);
      EXPECT_NEAR(result.psnr, alone.psnr, 1e-6 * alone.psnr);
      EXPECT_NEAR(result.ssim, alone.ssim, 1e-6 * std::abs(alone.ssim));
      EXPECT_TRUE(torch::equal(result.code_counts, alone.code_counts));
      EXPECT_EQ(result.psnr, results[0].psnr);
    }
  }
}

}  // namespace
}  // namespace lf
