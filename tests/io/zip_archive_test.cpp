// The zip reader behind .ckpt files: sizes in the central directory that the file cannot back are
// refused before anything is allocated for them.
#include "io/zip_archive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/torch_zip_util.h"

namespace lf {
namespace {

class ZipArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "/lf_zip_" + info->name() + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A one-record zip whose central directory entry has `value` at each of `fields` (20: packed
  // size, 24: unpacked size), opened; returns the error message.
  std::string open_patched(bool deflated, std::vector<size_t> fields, uint32_t value) {
    std::string zip = test::make_zip({{"archive/data.pkl", std::string(1000, 'a')}}, deflated);
    const size_t entry = zip.find(std::string("PK\x01\x02"));
    EXPECT_NE(entry, std::string::npos);
    for (size_t field : fields) zip.replace(entry + field, 4, test::le(value, 4));
    const std::string path = dir_ + "/patched.zip";
    test::write_bytes(path, zip);
    try {
      const MappedFile file = map_file("zip_test", path);
      const ZipArchive archive("zip_test", path, file);
      ADD_FAILURE() << "opened";
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(ZipArchiveTest, ReadsWhatItWrote) {
  for (const bool deflated : {false, true}) {
    const std::string data(1000, 'a');
    const std::string path = dir_ + "/ok.zip";
    test::write_bytes(path, test::make_zip({{"archive/data.pkl", data}}, deflated));
    const MappedFile file = map_file("zip_test", path);
    const ZipArchive archive("zip_test", path, file);
    const ZipEntry* e = archive.find("archive/data.pkl");
    ASSERT_NE(e, nullptr);
    std::string out(e->size, '\0');
    archive.extract("archive/data.pkl", *e, reinterpret_cast<uint8_t*>(&out[0]));
    EXPECT_EQ(out, data);
  }
}

// 1000 'a's deflate to ~12 bytes, which may unpack to at most 1032 * 12 + 1032 bytes.
TEST_F(ZipArchiveTest, DeflatedSizesBeyondDeflatesRatioAreRefused) {
  const std::string message = open_patched(/*deflated=*/true, {24}, 0x3fffffff);
  EXPECT_NE(message.find("[zip_test]"), std::string::npos) << message;
  EXPECT_NE(message.find("zip record 'archive/data.pkl' claims 1073741823 bytes unpacked"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("deflate expands at most 1032:1, so the limit is"), std::string::npos)
      << message;
}

TEST_F(ZipArchiveTest, PackedSizesBeyondTheFileAreRefused) {
  for (const bool deflated : {false, true}) {
    // A stored record's sizes must agree, so both are patched there.
    const std::string message = open_patched(
        deflated, deflated ? std::vector<size_t>{20} : std::vector<size_t>{20, 24}, 0xfffffff0);
    EXPECT_NE(message.find("claims 4294967280 packed bytes, more than the"), std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace lf
