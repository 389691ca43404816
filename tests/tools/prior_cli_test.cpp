// Stage 2 on the command line: training priors on a VQ run's cached codes, sampling them
// (class, sketch, larger grids, codes out and decoded later, uniform codes) and the one-line
// errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/config.h"
#include "io/safetensors.h"
#include "tools/cli_test_util.h"

namespace {

namespace fs = std::filesystem;
using lf::test::line_count;
using lf::test::run_cli;

using lf::test::fashion_mnist_installed;

std::string config_path(const std::string& name) {
  return std::string(LF_SOURCE_DIR) + "/configs/" + name;
}

const std::string kTiny =
    " --set train.steps=3 --set train.batch_size=32 --set train.log_every=1 --set data.limit=256";
const std::string kTinyGPT =
    " --set model.n_layer=1 --set model.n_head=2 --set model.n_embd=32" + kTiny;

TEST(PriorCli, TrainPriorsOnCachedCodesAndSampleThem) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string dir = ::testing::TempDir() + "/prior_cli";
  fs::remove_all(dir);
  const std::string vq = dir + "/vq", edges = dir + "/vq_edges", gpt = dir + "/gpt",
                    sketch = dir + "/gpt_sketch";
  auto r = run_cli("train --config " + config_path("vqvae_fashion.yaml") + " --out " + vq + kTiny +
                   " --no-report");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli("train --config " + config_path("vqvae_fashion_edges.yaml") + " --out " + edges +
              kTiny + " --no-report");
  ASSERT_EQ(r.code, 0) << r.output;

  // Class-conditional GPT: the model's vocabulary and grid come from the stage-1 run.
  r = run_cli("train --config " + config_path("gpt_fashion.yaml") + " --out " + gpt +
              " --set stage1=" + vq + kTinyGPT + " --eval-limit 64");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto config = lf::Config::from_yaml_file(gpt + "/config.json");
  EXPECT_EQ(config.get<std::string>("stage1"), vq);
  EXPECT_EQ(config.get<int64_t>("model.num_codes"), 256);
  EXPECT_EQ(config.get<std::vector<int64_t>>("model.grid"), (std::vector<int64_t>{7, 7}));
  for (const char* file : {"model.safetensors", "metrics.json", "samples.png", "log.jsonl"})
    EXPECT_TRUE(fs::exists(gpt + "/" + file)) << file;
  EXPECT_NE(lf::Config::from_yaml_file(gpt + "/metrics.json").get<double>("test_bits_per_code"), 0);
  // Encoded once, then read from the cache in the stage-1 run (train and test splits).
  ASSERT_TRUE(fs::is_directory(vq + "/codes"));
  std::map<std::string, fs::file_time_type> cache_times;
  for (const auto& entry : fs::directory_iterator(vq + "/codes"))
    cache_times[entry.path().string()] = entry.last_write_time();
  EXPECT_EQ(cache_times.size(), 2u);  // the train split and the report's test split
  r = run_cli("train --config " + config_path("gpt_fashion.yaml") + " --out " + gpt + "_again" +
              " --set stage1=" + vq + kTinyGPT + " --no-report");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& [path, time] : cache_times) EXPECT_EQ(fs::last_write_time(path), time) << path;

  // Sampling: a class, a 2x-wide grid through the sliding window, codes written and decoded later.
  r = run_cli("sample --prior " + gpt + " --class 3 --n 4 --out " + dir + "/class3.png");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli("sample --model " + vq + " --prior " + gpt + " --class Trouser --n 2 --size 7x14" +
              " --top-k 20 --top-p 0.9 --temperature 0.9 --out " + dir + "/wide.safetensors" +
              " --codes-out " + dir + "/wide_codes.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  auto wide = lf::load_safetensors(dir + "/wide.safetensors");
  EXPECT_EQ(wide.at("images").sizes(), (std::vector<int64_t>{2, 1, 28, 56}));
  EXPECT_EQ(wide.at("indices").sizes(), (std::vector<int64_t>{2, 7, 14}));
  EXPECT_EQ(wide.at("labels")[0].item<int64_t>(), 1);
  r = run_cli("decode --model " + vq + " " + dir + "/wide_codes.safetensors --out " + dir +
              "/decoded.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(torch::allclose(lf::load_safetensors(dir + "/decoded.safetensors").at("images"),
                              wide.at("images"), 1e-5, 1e-5));
  r = run_cli("sample --model " + vq + " --prior uniform --n 3 --out " + dir +
              "/uniform.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(lf::load_safetensors(dir + "/uniform.safetensors").at("indices").sizes(),
            (std::vector<int64_t>{3, 7, 7}));

  // Sketch -> garment: condition codes from the edge maps' own VQ model.
  r = run_cli("train --config " + config_path("gpt_fashion_sketch.yaml") + " --out " + sketch +
              " --set stage1=" + vq + " --set cond_stage=" + edges + kTinyGPT + " --no-report");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(
      lf::Config::from_yaml_file(sketch + "/config.json").get<int64_t>("model.cond_num_codes"), 64);
  ASSERT_EQ(run_cli("edges --first 2 --out " + dir + "/sketches.safetensors").code, 0);
  r = run_cli("sample --prior " + sketch + " --cond " + dir + "/sketches.safetensors --n 4 --out " +
              dir + "/from_sketch.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto from_sketch = lf::load_safetensors(dir + "/from_sketch.safetensors");
  EXPECT_EQ(from_sketch.at("images").size(0), 4);
  // The sketches' classes travel along: sample i used sketch i mod 2.
  const auto sketch_labels = lf::load_safetensors(dir + "/sketches.safetensors").at("labels");
  EXPECT_TRUE(torch::equal(from_sketch.at("labels"), sketch_labels.repeat({2})));

  // Wrong inputs: one line, non-zero, nothing written.
  const std::string bad = dir + "/bad.png";
  for (const std::string& args : std::vector<std::string>{
           "sample --prior " + gpt + " --class 11 --out " + bad,
           "sample --prior " + gpt + " --class Sneakerz --out " + bad,
           "sample --prior " + gpt + " --cond " + dir + "/sketches.safetensors --out " + bad,
           "sample --prior " + gpt + " --size 3x3 --out " + bad,
           "sample --prior " + gpt + " --size 7by7 --out " + bad,
           "sample --prior " + gpt + " --top-p 0 --out " + bad,
           "sample --prior " + sketch + " --out " + bad, "sample --prior " + vq + " --out " + bad,
           "sample --prior /nonexistent --out " + bad,
           "train --config " + config_path("gpt_fashion.yaml") +
               " --set stage1=/nonexistent --out " + dir + "/bad_run",
           "train --config " + config_path("gpt_fashion.yaml") + " --set stage1=" + vq + kTiny +
               " --set model.type=vqvae --out " + dir + "/bad_run"}) {
    r = run_cli(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(line_count(r.output), 1u) << args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(bad));
  fs::remove_all(dir);
}

}  // namespace
