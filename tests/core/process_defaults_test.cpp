// The start-up defaults every binary gets (src/core/process_defaults.cpp): jemalloc keeping freed
// pages, OpenMP's passive wait policy unless the user chose one, and an unchanged environment.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);

// stderr + stdout of this test binary started again with `env` and no tests selected.
std::string run_self(const std::string& env) {
  const std::string cmd =
      env + " /proc/" + std::to_string(getpid()) + "/exe --gtest_filter=NoSuchTest 2>&1";
  std::FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (pipe && std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  if (pipe) pclose(pipe);
  return out;
}

TEST(ProcessDefaults, JemallocKeepsFreedPages) {
  const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (!mallctl) GTEST_SKIP() << "built with LF_JEMALLOC=OFF";
  if (std::getenv("MALLOC_CONF")) GTEST_SKIP() << "MALLOC_CONF overrides the defaults";
  ssize_t dirty = 0, muzzy = 0;
  size_t size = sizeof dirty;
  ASSERT_EQ(mallctl("opt.dirty_decay_ms", &dirty, &size, nullptr, 0), 0);
  ASSERT_EQ(mallctl("opt.muzzy_decay_ms", &muzzy, &size, nullptr, 0), 0);
  EXPECT_EQ(dirty, -1);
  EXPECT_EQ(muzzy, -1);
}

TEST(ProcessDefaults, OpenMpWaitsPassivelyUnlessTheUserChose) {
  const auto passive = run_self("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=true");
  EXPECT_NE(passive.find("OMP_WAIT_POLICY = 'PASSIVE'"), std::string::npos) << passive;
  const auto active = run_self("env OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=true");
  EXPECT_NE(active.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << active;
}

// Child side of the next test: after start-up the variable set for libgomp is gone again.
TEST(ProcessDefaults, ChildSeesTheUsersEnvironment) {
  if (!std::getenv("LF_TEST_CHILD_ENV")) GTEST_SKIP() << "started by the next test";
  EXPECT_EQ(std::getenv("OMP_WAIT_POLICY"), nullptr);
  EXPECT_STREQ(std::getenv("LF_TEST_CHILD_ENV"), "kept");
}

TEST(ProcessDefaults, EnvironmentIsLeftAsTheUserSetIt) {
  const std::string cmd = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT LF_TEST_CHILD_ENV=kept /proc/" +
                          std::to_string(getpid()) +
                          "/exe --gtest_filter=ProcessDefaults.ChildSeesTheUsersEnvironment 2>&1";
  std::FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  EXPECT_EQ(pclose(pipe), 0) << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
}

}  // namespace
