// Looking up the embedded web UI files: see static_assets.h (the table is generated).
#include "server/static_assets.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lf::serve {

// Generated into the build folder: the files of web/ and their paths.
extern const StaticAsset kStaticAssets[];
extern const size_t kStaticAssetCount;

const StaticAsset* find_static_asset(const std::string& url_path) {
  const std::string path = url_path == "/" ? "/index.html" : url_path;
  for (size_t i = 0; i < kStaticAssetCount; ++i)
    if (path == kStaticAssets[i].path) return &kStaticAssets[i];
  return nullptr;
}

std::optional<std::string> read_development_asset(const std::string& url_path) {
  const char* dir = std::getenv("LF_WEB_DIR");
  if (!dir || !*dir || url_path.find("..") != std::string::npos) return std::nullopt;
  std::ifstream in(std::string(dir) + (url_path == "/" ? "/index.html" : url_path),
                   std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string static_content_type(const std::string& path) {
  auto ends_with = [&](const char* ext) {
    const size_t n = std::strlen(ext);
    return path.size() >= n && path.compare(path.size() - n, n, ext) == 0;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".png")) return "image/png";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".json")) return "application/json";
  return "text/plain; charset=utf-8";
}

}  // namespace lf::serve
