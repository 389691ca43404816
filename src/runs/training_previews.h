// Reconstructions of a fixed batch of test images while an image autoencoder trains, written to
// <run>/previews/step_NNNNNNN.png (inputs on the top row, reconstructions below): the web UI's
// "reconstructions over time" step slider reads them.
#pragma once

#include <string>

#include "data/dataset.h"
#include "models/autoencoder.h"

namespace lf {

class TrainingPreviews {
 public:
  // every: steps between previews (0: none); the batch is the first `count` images of `test`.
  TrainingPreviews(std::string run_dir, AutoencoderPtr model, const Dataset& test, int64_t every,
                   torch::Device device, int64_t count = 8);
  // Writes the preview of `step` when it is a multiple of `every`, or `last` is set.
  void maybe_write(int64_t step, bool last = false);

 private:
  std::string run_dir_;
  AutoencoderPtr model_;
  torch::Tensor batch_;  // [count, C, H, W] on the device
  int64_t every_;
};

std::string preview_name(int64_t step);  // "step_0000500.png"

}  // namespace lf
