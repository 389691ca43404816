// Configuration: YAML files (the format of taming-transformers and Stable Diffusion configs) held
// as JSON, "a.b.c=value" overrides, typed lookups with clear errors, and the resolved config as
// JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace lf {

using Json = nlohmann::json;

class Config {
 public:
  Config() : root_(Json::object()) {}
  explicit Config(Json root, std::string source = "<memory>");

  static Config from_yaml_file(const std::string& path);  // .yaml/.yml, or .json
  static Config from_yaml_string(const std::string& text, const std::string& source = "<string>");

  // "model.params.embed_dim=256": the value is read as YAML, so 3, 1e-4, true, [1,2], {a: 1} and
  // 'quoted' all keep their types. Missing intermediate objects are created.
  void set(const std::string& assignment);
  void set(const std::string& dotted_key, const Json& value);

  bool has(const std::string& dotted_key) const;
  const Json* find(const std::string& dotted_key) const;  // nullptr when absent
  const Json& at(const std::string& dotted_key) const;    // throws naming the key and the source

  template <typename T>
  T get(const std::string& dotted_key) const {
    const Json& node = at(dotted_key);
    try {
      return node.get<T>();
    } catch (const nlohmann::json::exception&) {
      fail("config", "{}: key '{}': expected {}, got {} ({})", source_, dotted_key, type_name<T>(),
           node.type_name(), node.dump());
    }
  }
  template <typename T>
  T get(const std::string& dotted_key, const T& fallback) const {
    return has(dotted_key) ? get<T>(dotted_key) : fallback;
  }

  Config sub(const std::string& dotted_key) const;  // a child object as its own Config
  const Json& json() const { return root_; }
  const std::string& source() const { return source_; }
  std::string dump(int indent = 2) const { return root_.dump(indent); }
  void save_json(const std::string& path) const;  // atomically

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>)
      return "a boolean";
    else if constexpr (std::is_integral_v<T>)
      return "an integer";
    else if constexpr (std::is_floating_point_v<T>)
      return "a number";
    else if constexpr (std::is_same_v<T, std::string>)
      return "a string";
    else
      return "a list or object of the right type";
  }

  Json root_;
  std::string source_;
};

// Parses one YAML scalar/flow value the way a config value is read ("1e-4" -> number).
Json parse_yaml_value(const std::string& text);

}  // namespace lf
