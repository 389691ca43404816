// The reconstruct page's job: an uploaded image made into the model's input (its channels, its
// training size or a multiple of its downsampling factor), reconstructed, scored with PSNR/SSIM,
// and returned as PNGs (input as the model sees it, reconstruction, error heat map).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "server/job_queue.h"
#include "server/served_models.h"
#include "train/checkpoint.h"

namespace lf::serve {

struct ReconstructSettings {
  torch::Device device{torch::kCPU};
  int64_t max_side = 1024;  // uploads for models without a fixed size are shrunk to this
  int threads = 0;          // LibTorch's CPU threads in the job's thread (OpenMP's count is per
                            // thread); 0 keeps the default
};

// The last model loaded, kept for the next job (jobs run one at a time, on the queue's worker).
class ModelCache {
 public:
  LoadedModel& get(const ServedModel& model, torch::Device device);

 private:
  std::string key_;
  LoadedModel loaded_;
};

// upload: the encoded image (PNG/JPEG/BMP), already checked with probe_image.
Json reconstruct_upload(const ServedModel& model, const std::string& upload,
                        const ReconstructSettings& settings, ModelCache& cache,
                        JobContext& context);

}  // namespace lf::serve
