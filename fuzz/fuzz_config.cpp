// libFuzzer target: configs as YAML and as JSON, then the original taming / ldm config converter
// on whatever parsed.
#include "core/error.h"
#include "io/config.h"
#include "io/original_config.h"

namespace {
void convert(const lf::Config& config) {
  if (!lf::is_original_config(config.json())) return;
  const lf::Json model = lf::model_config_from_original(config.json(), config.source());
  (void)model.dump();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    convert(lf::Config::from_yaml_string(text, "fuzz.yaml"));
  } catch (const lf::Error&) {
  }
  const lf::Json json = lf::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    convert(lf::Config(json, "fuzz.json"));
  } catch (const lf::Error&) {
  }
  return 0;
}
