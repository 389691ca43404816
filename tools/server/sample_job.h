// The sample page's job: code maps drawn from a prior (gpt, pixelcnn), class- or
// sketch-conditioned, at the training grid or larger (sliding window), or completing the kept top
// of a test image's code map; the maps decoded by the prior's first stage as tokens arrive.
#pragma once

#include <optional>

#include "server/reconstruct_job.h"

namespace lf::serve {

struct PriorSampleRequest {
  int64_t n = 8;
  uint64_t seed = 0;
  SamplingOptions sampling;           // temperature, top_k, top_p, window_h
  std::optional<int64_t> label;       // class-conditional priors; none: cycle through classes
  int64_t h = 0, w = 0;               // code grid; 0: the training grid (or the completed image's)
  std::optional<ImageSource> sketch;  // sketch-conditioned priors
  std::optional<ImageSource> complete;  // image completion: keep `keep` of its codes
  double keep = 0.5;
  int64_t every = 0;  // a partial decode every N cells; 0: about 12 per run

  static PriorSampleRequest from_json(const Json& body, const UploadLimits& limits);
};

// Partial results: {image, done, total}. Result: {image, images, labels, h, w, view_scale,
// seconds, sketch?, given?}.
Json sample_prior(const ServedModel& model, const PriorSampleRequest& request,
                  const JobSettings& settings, ModelCache& cache, JobContext& context);

}  // namespace lf::serve
