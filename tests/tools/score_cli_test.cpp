// `latentforge score` as a user meets it: a classifier run folder (random weights, nothing
// trained), samples with and without labels, the real-halves noise floor, and one-line errors that
// write nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/atomic_file.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/state_dict.h"
#include "models/classifier.h"
#include "tools/cli_test_util.h"
#include "train/checkpoint.h"
#include "train/trainable_types.h"

namespace fs = std::filesystem;

namespace lf {
namespace {

using test::line_count;
using test::run_cli;

using test::fashion_mnist_installed;

// A run folder as `latentforge train` leaves it: model.safetensors + config.json.
void write_run(const std::string& dir, TrainableImpl& model) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  save_module_safetensors(model, dir + "/model.safetensors");
  const Json config = {{"model", model_config_json(model)},
                       {"data", {{"root", "fashion-mnist"}, {"split", "train"}, {"limit", 64}}}};
  write_file_atomic(dir + "/config.json", config.dump(2));
}

class ScoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
    dir_ = ::testing::TempDir() + "/score_cli";
    run_ = dir_ + "/classifier";
    Classifier model(ClassifierOptions().widths({8, 16}).convs_per_stage(1).feature_dim(16));
    write_run(run_, *model);
  }

  // Writes a samples file; labels undefined = no "labels" key.
  std::string samples(const std::string& name, const torch::Tensor& images,
                      const torch::Tensor& labels = {}) {
    std::map<std::string, torch::Tensor> tensors;
    if (images.defined()) tensors["images"] = images;
    if (labels.defined()) tensors["labels"] = labels;
    const std::string path = dir_ + "/" + name + ".safetensors";
    save_safetensors(path, tensors);
    return path;
  }

  std::string out(const std::string& name) {
    const std::string path = dir_ + "/" + name + ".json";
    fs::remove(path);
    return path;
  }

  std::string dir_, run_;
};

TEST_F(ScoreCli, LabelledSamplesGiveDistanceAccuracyAndNoiseFloor) {
  const auto path = samples("labelled", torch::rand({40, 1, 28, 28}) * 2 - 1,
                            torch::arange(40, torch::kLong) % 10);
  const auto json_path = out("labelled");
  const auto r = run_cli("--threads 1 score --classifier " + run_ + " " + path +
                         " --real-limit 64 --real-halves --out " + json_path);
  ASSERT_EQ(r.code, 0) << r.output;
  const Json json = Json::parse(read_file(json_path));
  for (const char* key : {"n", "frechet_distance", "accuracy", "per_class_accuracy", "real_n",
                          "fd_real_halves", "predicted_classes", "classifier", "samples", "real"})
    EXPECT_TRUE(json.contains(key)) << key << ": " << json.dump();
  EXPECT_EQ(json.at("n"), 40);
  EXPECT_EQ(json.at("real_n"), 64);
  EXPECT_GT(json.at("frechet_distance").get<double>(), 0.0);
  EXPECT_NE(r.output.find("\"frechet_distance\""), std::string::npos) << r.output;  // printed too
}

TEST_F(ScoreCli, UnlabelledThirtyTwoPixelSamplesAndRealHalvesAlone) {
  const auto path = samples("unlabelled", torch::rand({12, 1, 32, 32}) * 2 - 1);
  const auto json_path = out("unlabelled");
  auto r = run_cli("--threads 1 score --classifier " + run_ + " " + path +
                   " --real-limit 32 --out " + json_path);
  ASSERT_EQ(r.code, 0) << r.output;
  Json json = Json::parse(read_file(json_path));
  EXPECT_EQ(json.at("n"), 12);
  EXPECT_FALSE(json.contains("accuracy"));
  EXPECT_FALSE(json.contains("fd_real_halves"));

  r = run_cli("--threads 1 score --classifier " + run_ + " --real-halves --real-limit 32 --out " +
              json_path);
  ASSERT_EQ(r.code, 0) << r.output;
  json = Json::parse(read_file(json_path));
  EXPECT_EQ(json.at("real_n"), 32);
  EXPECT_TRUE(json.contains("fd_real_halves"));
  EXPECT_FALSE(json.contains("frechet_distance"));
}

TEST_F(ScoreCli, BadInputsAreOneLineAndWriteNothing) {
  const auto x = torch::zeros({8, 1, 28, 28});
  const std::string not_classifier = dir_ + "/vqvae";
  {
    auto vq = make_trainable(Config(Json{{"type", "vqvae"},
                                         {"hidden", {8, 8}},
                                         {"num_res_blocks", 0},
                                         {"quantizer", {{"num_codes", 8}, {"code_dim", 4}}}}));
    write_run(not_classifier, *vq);
  }
  const auto good = samples("good", x);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {run_ + " " + dir_ + "/missing.safetensors", "missing.safetensors"},
      {run_ + " " + samples("no_images", {}, torch::zeros({8}, torch::kLong)),
       "no tensor 'images'"},
      {run_ + " " + samples("rgb", torch::zeros({8, 3, 28, 28})), "expected images [N, 1, H, W]"},
      {run_ + " " + samples("short_labels", x, torch::zeros({5}, torch::kLong)),
       "labels: expected [8] int64"},
      {not_classifier + " " + good, "expected a classifier run"},
      {dir_ + "/no_such_run " + good, "no_such_run"},
      {run_, "expected a SAMPLES.safetensors"},
  };
  for (const auto& [args, part] : cases) {
    const auto json_path = out("bad");
    const auto r =
        run_cli("--threads 1 score --real-limit 16 --out " + json_path + " --classifier " + args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(line_count(r.output), 1u) << args << ": " << r.output;
    EXPECT_NE(r.output.find(part), std::string::npos) << args << ": " << r.output;
    EXPECT_FALSE(fs::exists(json_path)) << args;
  }
}

}  // namespace
}  // namespace lf
