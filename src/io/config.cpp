// YAML -> JSON conversion and dotted-key access for Config.
#include "io/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "io/atomic_file.h"

namespace lf {

namespace {

std::vector<std::string> split_key(const std::string& dotted) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    parts.push_back(dotted.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty()) fail("config", "key '{}': expected names separated by single dots", dotted);
  return parts;
}

// YAML text may hold any bytes; JSON strings must be UTF-8, or dumping the config later throws.
const std::string& checked_utf8(const std::string& text, const YAML::Mark& mark) {
  try {
    (void)Json(text).dump();
  } catch (const Json::type_error&) {
    throw YAML::ParserException(mark, "a string that is not valid UTF-8");
  }
  return text;
}

// A plain (unquoted) YAML scalar keeps the type it reads as: null, bool, int, float, else string.
Json scalar_to_json(const YAML::Node& node) {
  const std::string& text = checked_utf8(node.Scalar(), node.Mark());
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const long long as_int = std::strtoll(begin, &end, 10);
  if (errno == 0 && end && *end == '\0' && text.find_first_of("0123456789") != std::string::npos)
    return static_cast<int64_t>(as_int);
  errno = 0;
  const double as_double = std::strtod(begin, &end);
  if (errno == 0 && end && *end == '\0' && text.find_first_of("0123456789") != std::string::npos)
    return as_double;
  if (text == ".inf" || text == "+.inf") return INFINITY;
  if (text == "-.inf") return -INFINITY;
  return text;
}

Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      Json array = Json::array();
      for (const auto& child : node) array.push_back(yaml_to_json(child));
      return array;
    }
    case YAML::NodeType::Map: {
      Json object = Json::object();
      for (const auto& kv : node)
        object[checked_utf8(kv.first.as<std::string>(), kv.first.Mark())] = yaml_to_json(kv.second);
      return object;
    }
  }
  return nullptr;
}

}  // namespace

Config::Config(Json root, std::string source) : root_(std::move(root)), source_(std::move(source)) {
  if (root_.is_null()) root_ = Json::object();
  if (!root_.is_object())
    fail("config", "{}: expected a mapping at the top level, got {}", source_, root_.type_name());
}

Config Config::from_yaml_string(const std::string& text, const std::string& source) {
  try {
    return Config(yaml_to_json(YAML::Load(text)), source);
  } catch (const YAML::Exception& e) {
    fail("config", "{}: invalid YAML at line {}, column {}: {}", source, e.mark.line + 1,
         e.mark.column + 1, e.msg);
  }
}

Config Config::from_yaml_file(const std::string& path) {
  const std::string text = read_file(path, "config");
  const bool is_json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (is_json) {
    try {
      return Config(Json::parse(text), path);
    } catch (const Json::parse_error& e) {
      fail("config", "{}: invalid JSON: {}", path, e.what());
    }
  }
  return from_yaml_string(text, path);
}

Json parse_yaml_value(const std::string& text) {
  try {
    return yaml_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    fail("config", "value '{}': invalid YAML: {}", text, e.msg);
  }
}

void Config::set(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail("config", "override '{}': expected key.path=value", assignment);
  set(assignment.substr(0, eq), parse_yaml_value(assignment.substr(eq + 1)));
}

void Config::set(const std::string& dotted_key, const Json& value) {
  Json* node = &root_;
  const auto parts = split_key(dotted_key);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Json& child = (*node)[parts[i]];
    if (child.is_null()) child = Json::object();
    if (!child.is_object())
      fail("config", "override '{}': '{}' is a {}, not a mapping", dotted_key, parts[i],
           child.type_name());
    node = &child;
  }
  (*node)[parts.back()] = value;
}

const Json* Config::find(const std::string& dotted_key) const {
  const Json* node = &root_;
  for (const auto& part : split_key(dotted_key)) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

bool Config::has(const std::string& dotted_key) const {
  const Json* node = find(dotted_key);
  return node && !node->is_null();
}

const Json& Config::at(const std::string& dotted_key) const {
  const Json* node = find(dotted_key);
  if (!node) fail("config", "{}: missing key '{}'", source_, dotted_key);
  return *node;
}

Config Config::sub(const std::string& dotted_key) const {
  const Json& node = at(dotted_key);
  if (!node.is_object())
    fail("config", "{}: key '{}': expected a mapping, got {}", source_, dotted_key,
         node.type_name());
  return Config(node, source_ + ":" + dotted_key);
}

void Config::save_json(const std::string& path) const {
  write_file_atomic(path, root_.dump(2) + "\n");
}

}  // namespace lf
