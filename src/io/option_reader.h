// Model and loss options from a config's JSON object, key by key, with one-line errors.
#pragma once

#include <set>
#include <string>

#include "core/error.h"
#include "io/config.h"

namespace lf {

// Reads present keys of a JSON object into existing option values; finish() rejects keys that were
// never asked for, listing the known ones. Missing keys keep their current (default) values.
class OptionReader {
 public:
  OptionReader(const Json& json, std::string where);
  template <typename T>
  OptionReader& operator()(const char* key, T& value) {
    known_.insert(key);
    if (const auto it = json_.find(key); it != json_.end()) {
      try {
        value = it->get<T>();
      } catch (const nlohmann::json::exception&) {
        fail(where_.c_str(), "key '{}': wrong type, got {} ({})", key, it->type_name(), it->dump());
      }
    }
    return *this;
  }
  // Marks key as known; returns the value or nullptr when absent (for nested objects).
  const Json* take(const char* key);
  void finish() const;

 private:
  const Json& json_;
  std::string where_;
  std::set<std::string> known_;
};

}  // namespace lf
