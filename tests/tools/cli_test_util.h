// Running the latentforge binary from tests: exit code and combined output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace lf::test {

struct CliResult {
  int code;
  std::string output;  // stdout + stderr
};

// Any shell command line (environment assignments, other programs): exit code and output.
inline CliResult run_cli_command(const std::string& command_line) {
  std::FILE* pipe = popen((command_line + " 2>&1").c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), output};
}

// The latentforge binary with these arguments.
inline CliResult run_cli(const std::string& args) {
  return run_cli_command(std::string(LF_CLI_PATH) + " " + args);
}

// Debian's dataset-fashion-mnist, which the CLI tests train on (skipped without it).
inline bool fashion_mnist_installed() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") ||
         std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte");
}

inline size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace lf::test
