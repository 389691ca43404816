// The command line as a user meets it: exit codes and one-line errors.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "io/image.h"
#include "tools/cli_test_util.h"

namespace {

using Result = lf::test::CliResult;
using lf::test::line_count;

Result run(const std::string& args) {
  return lf::test::run_cli(args);
}

TEST(Cli, InfoPrintsVersionsAndThreads) {
  const auto r = run("--threads 2 info");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("libtorch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("threads     2"), std::string::npos) << r.output;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* cmd : {"info", "preview", "train", "reconstruct", "encode", "decode", "sample",
                          "eval", "interpolate", "import", "bench", "serve", "edges", "score"}) {
    const auto r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd << ": " << r.output;
  }
}

TEST(Cli, ServeWithoutItsModelsFolderSaysSoInOneLine) {
  const auto r = run("serve --port 0 --models /nonexistent/models");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/models"), std::string::npos) << r.output;
}

TEST(Cli, BadInputIsOneLineAndNonZero) {
  for (const char* args :
       {"--device tpu info", "preview --data /nonexistent/folder --out /tmp/x.png",
        "preview --count 0"}) {
    const auto r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_LE(line_count(r.output), 2u) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  }
}

TEST(Cli, PreviewWritesAGridOfFashionMnist) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string out = ::testing::TempDir() + "/cli_preview.png";
  std::filesystem::remove(out);
  const auto r = run("preview --split test --count 16 --nrow 4 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("10000 images"), std::string::npos) << r.output;
  EXPECT_EQ(lf::load_image(out).sizes(), (std::vector<int64_t>{1, 122, 122}));
}

using lf::test::fashion_mnist_installed;

// Train a tiny VQ-VAE run through the CLI, then use it with every model subcommand.
TEST(Cli, TrainThenEncodeDecodeReconstructEval) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string dir = ::testing::TempDir() + "/cli_run";
  std::filesystem::remove_all(dir);
  const std::string config = std::string(LF_SOURCE_DIR) + "/configs/vqvae_fashion.yaml";
  auto r = run("train --config " + config + " --out " + dir +
               " --set train.steps=6 --set train.batch_size=32 --set train.log_every=2"
               " --set train.checkpoint_every=3 --set data.limit=256 --eval-limit 64");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* file :
       {"config.json", "command.txt", "log.jsonl", "model.safetensors", "metrics.json",
        "reconstructions.png", "training_curves.png", "codebook_usage.png", "checkpoints/latest",
        "checkpoints/step_0000003/optimizer.pt"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + file)) << file;

  // A second train into the same folder refuses; --resume continues to a higher step count.
  r = run("train --config " + config + " --out " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  r = run("train --resume " + dir + " --set train.steps=8 --no-report");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/checkpoints/step_0000008/model.safetensors"));

  const std::string grid = ::testing::TempDir() + "/cli_grid.png";
  ASSERT_EQ(run("preview --split test -n 4 --out " + dir + "/in.safetensors").code, 0);
  r = run("encode --model " + dir + " " + dir + "/in.safetensors --out " + dir +
          "/codes.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("decode --model " + dir + " " + dir + "/codes.safetensors --out " + dir + "/decoded.png");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("reconstruct --model " + dir + " " + dir + "/in.safetensors --out " + dir +
          "/rec.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("eval --model " + dir + " --limit 32 --out " + dir + "/eval.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"perplexity\""), std::string::npos) << r.output;

  // Wrong inputs: one line, non-zero, nothing written.
  for (const std::string& args : std::vector<std::string>{
           "decode --model " + dir + " " + dir + "/in.safetensors --out " + dir + "/bad.png",
           "sample --model " + dir + " --out " + dir + "/bad.png",
           "reconstruct --model /nonexistent " + dir + "/in.safetensors --out " + dir + "/bad.png",
           "train --config " + config + " --set train.stepz=3 --out " + dir + "_bad",
           "train --config /nonexistent.yaml"}) {
    r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(line_count(r.output), 1u) << args << ": " << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.png"));
}

}  // namespace
