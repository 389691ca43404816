// Original checkpoints through the command line: `reconstruct --config ORIGINAL.yaml --weights W`
// for every key layout (taming/CompVis keys, a full SD checkpoint, diffusers, a Lightning .ckpt),
// `import` to a model folder, tiling options, png files, and one-line errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "io/image.h"
#include "io/safetensors.h"
#include "tools/cli_test_util.h"

namespace lf {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const std::string kLdm = std::string(LF_TEST_DATA_DIR) + "/ldm/";

class ImportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("lf_import_cli_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The fixture's input as an "images" file and its reference reconstruction.
  std::pair<std::string, torch::Tensor> fixture_io(const std::string& name) {
    auto tensors = load_safetensors(kLdm + name + ".safetensors");
    const std::string input = dir_ + "/" + name + "_in.safetensors";
    save_safetensors(input, {{"images", tensors.at("input")}});
    return {input, tensors.at("decoded")};
  }

  double max_diff(const std::string& out, const torch::Tensor& expected) {
    const auto y = load_safetensors(out).at("images");
    EXPECT_EQ(y.sizes(), expected.sizes());
    return (y - expected.clamp(-1, 1)).abs().max().item<double>();
  }

  std::string dir_;
};

TEST_F(ImportCli, ReconstructsWithEveryKeyLayout) {
  const auto [input, expected] = fixture_io("sd_kl_small");
  const std::pair<const char*, const char*> cases[] = {
      {"sd_kl_small.yaml", "sd_kl_small.safetensors"},
      {"sd_kl_small_full_sd.yaml", "sd_kl_small_full_sd.safetensors"},
      {"sd_kl_small.yaml", "sd_kl_small_diffusers.safetensors"},
      {"sd_kl_small_full_sd.yaml", "sd_kl_small.ckpt"},
  };
  for (const auto& [config, weights] : cases) {
    const std::string out = dir_ + "/out.safetensors";
    const auto r = run_cli("reconstruct --config " + kLdm + config + " --weights " + kLdm +
                           weights + " " + input + " --out " + out);
    ASSERT_EQ(r.code, 0) << weights << ": " << r.output;
    EXPECT_LE(max_diff(out, expected), 1e-4) << weights;
  }
}

TEST_F(ImportCli, TamingVQGANReconstructsAndEncodesIndices) {
  const auto [input, expected] = fixture_io("taming_vqgan");
  const std::string args =
      "--config " + kLdm + "taming_vqgan.yaml --weights " + kLdm + "taming_vqgan.safetensors ";
  auto r = run_cli("reconstruct " + args + input + " --out " + dir_ + "/out.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LE(max_diff(dir_ + "/out.safetensors", expected), 1e-4);
  r = run_cli("encode " + args + input + " --out " + dir_ + "/code.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto code = load_safetensors(dir_ + "/code.safetensors");
  const auto reference = load_safetensors(kLdm + "taming_vqgan.safetensors");
  EXPECT_TRUE(torch::equal(code.at("indices"), reference.at("indices")));
  r = run_cli("decode " + args + dir_ + "/code.safetensors --out " + dir_ + "/dec.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LE(max_diff(dir_ + "/dec.safetensors", expected), 1e-4);
}

TEST_F(ImportCli, ImportWritesAModelFolderThatEveryCommandTakes) {
  const auto [input, expected] = fixture_io("sd_kl_small");
  const std::string model = dir_ + "/sd_small";
  auto r = run_cli("import --config " + kLdm + "sd_kl_small_full_sd.yaml --weights " + kLdm +
                   "sd_kl_small_diffusers.safetensors --out " + model);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("layout diffusers"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(model + "/config.json"));
  r = run_cli("reconstruct --model " + model + " " + input + " --out " + dir_ + "/out.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LE(max_diff(dir_ + "/out.safetensors", expected), 1e-4);
  // KL encode writes the posterior and the scaled latents.
  r = run_cli("encode --model " + model + " " + input + " --out " + dir_ + "/code.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto code = load_safetensors(dir_ + "/code.safetensors");
  for (const char* key : {"mean", "logvar", "latents"}) EXPECT_TRUE(code.count(key)) << key;
}

TEST_F(ImportCli, PngFilesAndTiling) {
  const std::string png = dir_ + "/in.png";
  save_image(png, torch::rand({3, 64, 48}) * 2 - 1);
  const std::string args = "--config " + kLdm + "sd_kl_small.yaml --weights " + kLdm +
                           "sd_kl_small.safetensors " + png + " --out ";
  auto r = run_cli("reconstruct " + args + dir_ + "/out.png");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ + "/out.png"));
  r = run_cli("reconstruct --tile 32 --tile-overlap 16 " + args + dir_ + "/tiled.png");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli("reconstruct --tile 30 " + args + dir_ + "/bad.png");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(test::line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("multiples of the downsampling factor 8"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ + "/bad.png"));
}

TEST_F(ImportCli, StreamingIsExactAndAnyImageSizeWorks) {
  const auto [input, expected] = fixture_io("sd_kl_small");
  const std::string args =
      "--config " + kLdm + "sd_kl_small.yaml --weights " + kLdm + "sd_kl_small.safetensors ";
  auto r = run_cli("reconstruct --stream " + args + input + " --out " + dir_ + "/s.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LE(max_diff(dir_ + "/s.safetensors", expected), 1e-4);
  // A bound well above the need runs whole, silently.
  r = run_cli("reconstruct --max-memory 8G " + args + input + " --out " + dir_ + "/w.safetensors");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("streamed"), std::string::npos) << r.output;
  // Sides that are not multiples of 8 come back at their own size.
  const std::string png = dir_ + "/odd.png";
  save_image(png, torch::rand({3, 45, 38}) * 2 - 1);
  r = run_cli("reconstruct --stream " + args + png + " --out " + dir_ + "/odd_out.png");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(load_image(dir_ + "/odd_out.png").sizes(), (std::vector<int64_t>{3, 45, 38}));
  // Errors: one line, no output file.
  for (const std::string bad : {"--max-memory 1K", "--max-memory lots", "--stream --tile 32"}) {
    r = run_cli("reconstruct " + bad + " " + args + png + " --out " + dir_ + "/bad.png");
    EXPECT_NE(r.code, 0) << bad;
    EXPECT_EQ(test::line_count(r.output), 1u) << r.output;
    EXPECT_FALSE(fs::exists(dir_ + "/bad.png"));
  }
}

TEST_F(ImportCli, MismatchedConfigAndWeightsFailInOneLine) {
  const auto [input, expected] = fixture_io("sd_kl_small");
  const std::string out = dir_ + "/out.safetensors";
  // VQGAN config with SD weights: the codebook and more are missing.
  auto r = run_cli("reconstruct --config " + kLdm + "taming_vqgan.yaml --weights " + kLdm +
                   "sd_kl_small.safetensors " + input + " --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(test::line_count(r.output), 1u) << r.output;
  EXPECT_FALSE(fs::exists(out));
  r = run_cli("reconstruct --config " + kLdm + "sd_kl_small.yaml --weights " + dir_ +
              "/missing.safetensors " + input + " --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  r = run_cli("reconstruct --config " + kLdm + "sd_kl_small.yaml " + input + " --out " + out);
  EXPECT_NE(r.code, 0) << r.output;  // --config needs --weights
}

}  // namespace
}  // namespace lf
