// Device parsing, threads and seeding.
#include "core/runtime.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lf {
namespace {

TEST(Runtime, ParsesCpuAndAuto) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  const auto automatic = parse_device("auto");
  EXPECT_EQ(automatic.is_cuda(), cuda_device_count() > 0);
}

TEST(Runtime, RejectsUnknownDevicesWithOneLine) {
  for (const char* bad : {"gpu", "cuda:x", "cuda:", "cuda:-1", "CPU", ""}) {
    try {
      parse_device(bad);
      FAIL() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("[device]"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

TEST(Runtime, CudaWithoutGpuIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "CUDA present";
  EXPECT_THROW(parse_device("cuda"), Error);
  EXPECT_THROW(parse_device("cuda:0"), Error);
}

TEST(Runtime, ZeroThreadsMeansAllCores) {
  set_threads(0);
  EXPECT_EQ(torch::get_num_threads(), hardware_threads());
  set_threads(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_THROW(set_threads(-2), Error);
  set_threads(0);
}

TEST(Runtime, SeedingRepeats) {
  seed_everything(7);
  auto a = torch::randn({8});
  seed_everything(7);
  auto b = torch::randn({8});
  EXPECT_TRUE(torch::equal(a, b));
}

}  // namespace
}  // namespace lf
