// Reading a run's log and pictures for the train page: see run_files.h.
#include "server/run_files.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "server/image_views.h"

namespace lf::serve {

Json read_run_log(const std::string& dir, int64_t after, size_t max_records) {
  std::deque<Json> kept;
  int64_t last_step = after;
  bool truncated = false;
  std::ifstream in(dir + "/log.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() != '{' || line.back() != '}') continue;  // torn by a kill
    Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
      continue;
    const int64_t step = record["step"].get<int64_t>();
    if (step <= after) continue;
    last_step = std::max(last_step, step);
    kept.push_back(std::move(record));
    if (kept.size() > max_records) {
      kept.pop_front();
      truncated = true;
    }
  }
  Json records = Json::array();
  for (auto& record : kept) records.push_back(std::move(record));
  return {{"records", std::move(records)}, {"last_step", last_step}, {"truncated", truncated}};
}

std::string run_image_png(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name + ".png";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  const torch::Tensor image = load_image(path);
  return encode_png(upscale_nearest(image, view_scale(image.size(1), image.size(2), 512)));
}

}  // namespace lf::serve
