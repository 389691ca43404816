// The latent page's jobs (ae, vae, autoencoder_kl): interpolation between two images' latents
// (linear or spherical), traversal of one latent dimension, and a VAE's samples from N(0, I).
#pragma once

#include "server/reconstruct_job.h"

namespace lf::serve {

struct InterpolateRequest {
  ImageSource a, b;
  int64_t steps = 9;       // frames, both ends included (2..33)
  bool spherical = false;  // slerp instead of lerp
};
// {frames: [base64 PNG], t: [...], a, b, view_scale}
Json interpolate_latents(const ServedModel& model, const InterpolateRequest& request,
                         const JobSettings& settings, ModelCache& cache, JobContext& context);

struct TraverseRequest {
  ImageSource image;
  int64_t dim = 0;  // the latent dimension (a channel of a spatial latent)
  double span = 3;  // the shift goes from -span to +span
  int64_t steps = 9;
};
// {frames, values, dims, view_scale}
Json traverse_latent(const ServedModel& model, const TraverseRequest& request,
                     const JobSettings& settings, ModelCache& cache, JobContext& context);

// A VAE's n samples from N(0, I) with a seed: {image (grid), images, view_scale}.
Json sample_autoencoder(const ServedModel& model, int64_t n, uint64_t seed,
                        const JobSettings& settings, ModelCache& cache, JobContext& context);

// (1 - t) a + t b, or the spherical interpolation of the flattened latents (taken along the great
// circle between their directions, their norms interpolated linearly; lerp when they are parallel).
torch::Tensor interpolate(const torch::Tensor& a, const torch::Tensor& b, double t, bool spherical);

}  // namespace lf::serve
