// The reconstruct page's job: an image (upload or test image) made into the model's input,
// reconstructed, scored with PSNR/SSIM, and returned as PNGs (input as the model sees it,
// reconstruction, error heat map).
#pragma once

#include <torch/torch.h>

#include "server/job_queue.h"
#include "server/model_cache.h"
#include "server/model_inputs.h"
#include "server/served_models.h"

namespace lf::serve {

// What every model job needs besides its request.
struct JobSettings {
  torch::Device device{torch::kCPU};
  int64_t max_side = 1024;  // uploads for models without a fixed size are shrunk to this
  int threads = 0;          // LibTorch's CPU threads in the job's thread (OpenMP's count is per
                            // thread); 0 keeps the default
};

// Applies settings.threads to the calling (worker) thread.
void apply_job_threads(const JobSettings& settings);

Json reconstruct_image(const ServedModel& model, const ImageSource& image,
                       const JobSettings& settings, ModelCache& cache, JobContext& context);

}  // namespace lf::serve
