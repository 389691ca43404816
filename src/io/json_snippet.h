// A JSON value for an error message, cut short: header values may be megabytes long, and bytes
// that are not UTF-8 are replaced rather than thrown on.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace lf {

inline std::string json_snippet(const nlohmann::json& value) {
  std::string s = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace lf
