// What the train page reads from a run folder: the records of log.jsonl (steps, loss terms, lr)
// and the run's pictures, re-encoded as PNG before they are served.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lf::serve {

using Json = nlohmann::json;

// The records of <dir>/log.jsonl with step > after, in file order; a torn or malformed line is
// skipped. At most max_records (the newest ones) are returned; "truncated" says so.
// -> {"records": [...], "last_step": N, "truncated": bool}
Json read_run_log(const std::string& dir, int64_t after, size_t max_records = 20000);

// <dir>/<name>.png decoded and encoded again (enlarged nearest-neighbour when small); "" when the
// run has no such picture yet.
std::string run_image_png(const std::string& dir, const std::string& name);

// The steps of <dir>/previews/step_NNNNNNN.png (the reconstructions of a fixed batch over training,
// src/runs/training_previews.h), ascending.
std::vector<int64_t> run_preview_steps(const std::string& dir);
// One preview re-encoded (enlarged when small); "" when there is none for that step.
std::string run_preview_png(const std::string& dir, int64_t step);

}  // namespace lf::serve
