// Reading a run's log and pictures for the train page: see run_files.h.
#include "server/run_files.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "runs/training_previews.h"
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

std::vector<int64_t> run_preview_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir + "/previews", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // step_NNNNNNN.png; the .tmp files of a write in progress do not match
    if (name.size() != 16 || name.rfind("step_", 0) != 0 || name.substr(12) != ".png") continue;
    const std::string digits = name.substr(5, 7);
    if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    steps.push_back(std::stoll(digits));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string run_preview_png(const std::string& dir, int64_t step) {
  const std::string path = dir + "/previews/" + preview_name(step);
  std::error_code ec;
  if (step < 0 || !std::filesystem::is_regular_file(path, ec)) return "";
  const torch::Tensor image = load_image(path);
  return encode_png(upscale_nearest(image, view_scale(image.size(1), image.size(2), 512)));
}

}  // namespace lf::serve
