// The models the server's jobs use, kept loaded between jobs: the last few folders loaded (an image
// autoencoder, a prior with its first stage and condition stage), each loaded again when its
// weights file changes. Used only from the job queue's one worker thread.
#pragma once

#include <torch/torch.h>

#include <list>
#include <memory>
#include <string>

#include "priors/prior.h"
#include "train/checkpoint.h"

namespace lf::serve {

class ModelCache {
 public:
  explicit ModelCache(size_t capacity = 4) : capacity_(capacity) {}

  // An image autoencoder from a run or imported model folder (eval mode, on `device`).
  LoadedModel& autoencoder(const std::string& dir, torch::Device device);
  // A prior (gpt, pixelcnn) from a run folder; throws lf::Error for any other kind.
  Loaded<PriorPtr>& prior(const std::string& dir, torch::Device device);

 private:
  struct Entry {
    std::string key;  // folder, weights file and its modification time
    LoadedModel autoencoder;
    Loaded<PriorPtr> prior;
  };
  Entry& find_or_load(const std::string& dir, torch::Device device, bool want_prior);

  size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace lf::serve
