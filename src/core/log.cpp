// stderr logger setup.
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.h"

namespace lf {

void init_logging(const std::string& level) {
  auto logger = spdlog::get("latentforge");
  if (!logger) logger = spdlog::stderr_color_mt("latentforge");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%H:%M:%S %l]%$ %v");
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    fail("log", "level '{}': expected trace, debug, info, warn, error or off", level);
  spdlog::set_level(parsed);
}

}  // namespace lf
