// The codebook page's jobs (VQ models): an image's code map, the decode of any code map (edited,
// or filled with one code), and how often each code is used over the test split.
#pragma once

#include <map>
#include <string>

#include "server/reconstruct_job.h"

namespace lf::serve {

// {h, w, num_codes, indices: [h*w], input, reconstruction (base64 PNG), view_scale, psnr}
Json encode_codes(const ServedModel& model, const ImageSource& image, const JobSettings& settings,
                  ModelCache& cache, JobContext& context);

// A code map from a request: {h, w, indices: [h*w ints]} (checked: sizes, integers).
struct CodeMap {
  int64_t h = 0, w = 0;
  std::vector<int64_t> indices;
  static CodeMap from_json(const Json& body);  // throws lf::Error naming what is wrong
};

// {image (base64 PNG), view_scale}; indices are checked against the model's codebook size.
Json decode_codes(const ServedModel& model, const CodeMap& codes, const JobSettings& settings,
                  ModelCache& cache, JobContext& context);

// Per-code counts over the first `limit` test images: {num_codes, counts, images, cells, used,
// dead, perplexity, grid}. Kept in `memo` per weights file (the job's worker owns it).
Json code_usage(const ServedModel& model, int64_t limit, const JobSettings& settings,
                ModelCache& cache, std::map<std::string, Json>& memo, JobContext& context);

}  // namespace lf::serve
