// Atomic output: no partial file on failure, content complete on success.
#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"

namespace lf {
namespace {

TEST(AtomicFile, WritesWholeContent) {
  const std::string path = ::testing::TempDir() + "/atomic_ok.txt";
  write_file_atomic(path, "hello");
  EXPECT_EQ(read_file(path), "hello");
}

TEST(AtomicFile, AbandonedWriteLeavesNothing) {
  const std::string path = ::testing::TempDir() + "/atomic_abandoned.txt";
  std::filesystem::remove(path);
  std::string temp;
  {
    AtomicFile file(path);
    temp = file.temp_path();
    file.write("partial");
    EXPECT_TRUE(std::filesystem::exists(temp));
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(temp));
}

TEST(AtomicFile, FailedWriterKeepsThePreviousFile) {
  const std::string path = ::testing::TempDir() + "/atomic_keep.txt";
  write_file_atomic(path, "old");
  EXPECT_THROW(write_via_temp(path,
                              [](const std::string& temp) {
                                write_file_atomic(temp, "new but broken");
                                throw Error("writer failed");
                              }),
               Error);
  EXPECT_EQ(read_file(path), "old");
}

TEST(AtomicFile, UnwritableDirectoryIsAClearError) {
  EXPECT_THROW(write_file_atomic("/nonexistent_dir/x.txt", "a"), Error);
  EXPECT_THROW(read_file("/nonexistent_dir/x.txt"), Error);
}

}  // namespace
}  // namespace lf
