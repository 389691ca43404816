// Options read key by key: see option_reader.h.
#include "io/option_reader.h"

#include <fmt/ranges.h>

namespace lf {

OptionReader::OptionReader(const Json& json, std::string where)
    : json_(json), where_(std::move(where)) {
  if (!json_.is_object())
    fail(where_.c_str(), "expected an object of options, got {}", json_.dump());
}

const Json* OptionReader::take(const char* key) {
  known_.insert(key);
  const auto it = json_.find(key);
  return it == json_.end() ? nullptr : &*it;
}

void OptionReader::finish() const {
  for (const auto& item : json_.items())
    if (!known_.count(item.key()))
      fail(where_.c_str(), "unknown option '{}' (known: {})", item.key(), fmt::join(known_, ", "));
}

}  // namespace lf
