// Logging goes through spdlog to stderr (stdout stays free for program output).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace lf {

// level: "trace", "debug", "info", "warn", "error", "off". Safe to call more than once.
void init_logging(const std::string& level = "info");

}  // namespace lf
