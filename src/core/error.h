// Error type of the library: one message that names the function, the file or key, and what
// was expected, e.g. "[safetensors::load] model.safetensors: header claims 2 TB, file is 10 kB".
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace lf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// fail("safetensors::load", "{}: expected {}, got {}", path, a, b) throws "[safetensors::load] ..."
template <typename... Args>
[[noreturn]] void fail(const char* where, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format("[{}] {}", where, fmt::format(format, std::forward<Args>(args)...)));
}

// Shape formatting for error messages: "[N, C, H, W]".
template <typename Sizes>
std::string shape_str(const Sizes& sizes) {
  std::string s = "[";
  bool first = true;
  for (auto v : sizes) {
    if (!first) s += ", ";
    s += std::to_string(v);
    first = false;
  }
  return s + "]";
}

// Throws "[where] key: expected one of a, b, got 'c'" unless value is in allowed.
inline void check_choice(const std::string& value, const std::vector<std::string>& allowed,
                         const char* where, const char* key) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const auto& choice : allowed) list += (list.empty() ? "" : ", ") + choice;
  fail(where, "{}: expected one of {}, got '{}'", key, list, value);
}

}  // namespace lf
