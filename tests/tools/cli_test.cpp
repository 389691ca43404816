// The command line as a user meets it: exit codes and one-line errors.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "io/image.h"

namespace {

struct Result {
  int code;
  std::string output;  // stdout + stderr
};

Result run(const std::string& args) {
  const std::string command = std::string(LF_CLI_PATH) + " " + args + " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), output};
}

size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, InfoPrintsVersionsAndThreads) {
  const auto r = run("--threads 2 info");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("libtorch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("threads     2"), std::string::npos) << r.output;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* cmd : {"info", "preview", "train", "reconstruct", "encode", "decode", "sample",
                          "eval", "import", "bench", "serve"}) {
    const auto r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd << ": " << r.output;
  }
}

TEST(Cli, PlannedSubcommandsSaySoInOneLine) {
  const auto r = run("serve");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("not available yet"), std::string::npos) << r.output;
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

}  // namespace
