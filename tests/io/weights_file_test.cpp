// Weight files by content: safetensors and torch.save checkpoints whatever their extension, and
// one clear line for anything else.
#include "io/weights_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/torch_zip_util.h"

namespace lf {
namespace {

namespace fs = std::filesystem;

std::string weights_fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/" + name;
}

class WeightsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / fmt::format("lf_wf_{}_{}", info->name(), ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string copy(const std::string& from, const std::string& name) {
    const std::string path = (dir_ / name).string();
    fs::copy_file(from, path);
    return path;
  }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    test::write_bytes(path, bytes);
    return path;
  }
  static void expect_error(const std::string& path, const std::string& where,
                           const std::string& expected) {
    try {
      read_weights_file(path);
      ADD_FAILURE() << path << " was read; expected an error containing: " << expected;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("[" + where + "] " + path + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(expected), std::string::npos)
          << "expected '" << expected << "' in: " << message;
    }
  }

  fs::path dir_;
};

void expect_same(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    ASSERT_TRUE(b.count(key)) << key;
    EXPECT_TRUE(torch::equal(t, b.at(key))) << key;
  }
}

TEST_F(WeightsFileTest, ReadsSafetensorsByContentOrExtension) {
  const std::string original = weights_fixture("safetensors/mixed.safetensors");
  const TensorMap expected = load_safetensors(original);
  expect_same(expected, read_weights_file(original));
  expect_same(expected, read_weights_file(copy(original, "weights.bin")));
}

TEST_F(WeightsFileTest, ReadsTorchCheckpointsByContent) {
  const std::string original = weights_fixture("import/lightning.ckpt");
  const TensorMap expected = read_torch_checkpoint(original);
  expect_same(expected, read_weights_file(original));
  expect_same(expected, read_weights_file(copy(original, "model.weights")));
}

TEST_F(WeightsFileTest, LegacyTorchFilesGetTheConversionHint) {
  expect_error(weights_fixture("import/legacy.pt"), "torch_checkpoint::read", "legacy (pre-1.6");
}

TEST_F(WeightsFileTest, UnknownFormatsListTheSupportedOnes) {
  const std::string formats =
      "unknown weight file format (supported: .safetensors, and "
      "PyTorch/Lightning checkpoints";
  expect_error(write("w.ckpt", "GGUF not ours"), "weights_file::read", formats);
  expect_error(write("w.bin", ""), "weights_file::read", formats);
  expect_error(write("w.h5", std::string("\x89HDF\r\n\x1a\n", 8)), "weights_file::read", formats);
  expect_error((dir_ / "missing.safetensors").string(), "weights_file::read", "no such file");
  expect_error(dir_.string(), "weights_file::read", "is a directory");
}

TEST_F(WeightsFileTest, BrokenFilesGetTheirReadersErrors) {
  expect_error(write("broken.safetensors", "tiny"), "safetensors::load", "too short");
  expect_error(write("broken.ckpt", "PK\x03\x04garbage"), "torch_checkpoint::read",
               "too short for a zip archive");
}

}  // namespace
}  // namespace lf
