// The start-up defaults every binary gets (src/core/process_defaults.cpp): jemalloc keeping freed
// pages, OpenMP's passive wait policy unless the user chose one, and an unchanged environment.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// What counts is the spin count libgomp ends up with (its verbose display shows it): libgomp
// displays OMP_WAIT_POLICY as 'PASSIVE' also when the variable is unset and its threads spin
// 300 k iterations, which an earlier version of this test took for success.
TEST(ProcessDefaults, OpenMpSpinsBrieflyUnlessTheUserChose) {
  const auto ours = run_self("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose");
  EXPECT_NE(ours.find("GOMP_SPINCOUNT = '30000'"), std::string::npos) << ours;
  const auto passive =
      run_self("env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive OMP_DISPLAY_ENV=verbose");
  EXPECT_NE(passive.find("GOMP_SPINCOUNT = '0'"), std::string::npos) << passive;
  const auto active = run_self("env OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose");
  EXPECT_NE(active.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << active;
  EXPECT_EQ(active.find("GOMP_SPINCOUNT = '0'"), std::string::npos) << active;
  const auto spin = run_self("env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 OMP_DISPLAY_ENV=verbose");
  EXPECT_NE(spin.find("GOMP_SPINCOUNT = '1000'"), std::string::npos) << spin;
}

// The policy is an answer of the program's getenv, not a change of the environment: child
// processes get the user's environment.
TEST(ProcessDefaults, EnvironmentIsLeftAsTheUserSetIt) {
  if (std::getenv("LF_TEST_UNSET_CHECK") == nullptr) {
    const std::string cmd =
        "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT LF_TEST_UNSET_CHECK=1 /proc/" +
        std::to_string(getpid()) +
        "/exe --gtest_filter=ProcessDefaults.EnvironmentIsLeftAsTheUserSetIt "
        "2>&1";
    std::FILE* pipe = popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string out;
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
    EXPECT_EQ(pclose(pipe), 0) << out;
    EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << out;
    return;
  }
  // Started without the variables: libgomp is told a spin count, the environment does not have it.
  EXPECT_STREQ(std::getenv("GOMP_SPINCOUNT"), "30000");
  EXPECT_EQ(std::getenv("OMP_WAIT_POLICY"), nullptr);
  for (char** e = environ; *e; ++e) EXPECT_NE(std::strncmp(*e, "GOMP_SPINCOUNT=", 15), 0) << *e;
  std::FILE* pipe = popen("env", "r");
  ASSERT_NE(pipe, nullptr);
  std::string child;
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), pipe)) child += buf.data();
  pclose(pipe);
  EXPECT_NE(child.find("LF_TEST_UNSET_CHECK=1"), std::string::npos) << child;
  EXPECT_EQ(child.find("GOMP_SPINCOUNT"), std::string::npos) << child;
}

}  // namespace
