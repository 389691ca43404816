// The web UI's files (web/), embedded in the binary at build time by cmake/embed_web_assets.cmake.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace lf::serve {

struct StaticAsset {
  const char* path;  // "/index.html", "/vendor/uPlot.iife.min.js", ...
  const unsigned char* data;
  size_t size;
};

// The asset served at a URL path ("/" is /index.html); nullptr when there is none.
const StaticAsset* find_static_asset(const std::string& url_path);
// For working on the pages: when the environment variable LF_WEB_DIR names a folder (the source
// tree's web/), the file at url_path under it, read fresh on every request; nullopt when LF_WEB_DIR
// is unset or the file is missing. url_path must already have passed the request guard (no "..").
std::optional<std::string> read_development_asset(const std::string& url_path);
// The Content-Type for an asset's path, from its extension.
std::string static_content_type(const std::string& path);

}  // namespace lf::serve
