// The server's loaded models: see model_cache.h.
#include "server/model_cache.h"

#include <filesystem>

#include "core/error.h"
#include "model_source.h"

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

// Which file a folder's model comes from, and when it last changed: a run that keeps training
// writes new weights, and the next job loads them.
std::string cache_key(const std::string& dir, torch::Device device) {
  std::string weights = dir + "/model.safetensors";
  std::error_code ec;
  if (!fs::exists(weights, ec)) {
    const std::string checkpoint = latest_checkpoint(dir);
    weights = checkpoint.empty() ? dir : checkpoint + "/model.safetensors";
  }
  const auto stamp = fs::last_write_time(weights, ec);
  return dir + "|" + weights + "|" + std::to_string(ec ? 0 : stamp.time_since_epoch().count()) +
         "|" + device.str();
}

}  // namespace

ModelCache::Entry& ModelCache::find_or_load(const std::string& dir, torch::Device device,
                                            bool want_prior) {
  const std::string key = cache_key(dir, device);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key != key) continue;
    entries_.splice(entries_.begin(), entries_, it);
    return entries_.front();
  }
  // Drop stale versions of this folder first, then the least recently used.
  const std::string prefix = dir + "|";
  entries_.remove_if([&](const Entry& e) { return e.key.rfind(prefix, 0) == 0; });
  while (entries_.size() >= capacity_) entries_.pop_back();
  Entry entry;
  entry.key = key;
  if (want_prior) {
    auto loaded = load_trainable(dir, device);
    auto prior = std::dynamic_pointer_cast<PriorImpl>(loaded.model);
    if (!prior)
      fail("serve", "{}: holds a {} model, expected a prior (gpt, pixelcnn)",
           fs::path(dir).filename().string(), loaded.model->kind());
    entry.prior = {prior, std::move(loaded.config), std::move(loaded.weights_path)};
  } else {
    cli::ModelSource source;
    source.model = dir;
    entry.autoencoder = cli::open_model_source(source, device);
  }
  entries_.push_front(std::move(entry));
  return entries_.front();
}

LoadedModel& ModelCache::autoencoder(const std::string& dir, torch::Device device) {
  Entry& e = find_or_load(dir, device, false);
  if (!e.autoencoder.model) {  // the folder was loaded as a prior before: load_model refuses it
    cli::ModelSource source;
    source.model = dir;
    e.autoencoder = cli::open_model_source(source, device);
  }
  return e.autoencoder;
}

Loaded<PriorPtr>& ModelCache::prior(const std::string& dir, torch::Device device) {
  Entry& e = find_or_load(dir, device, true);
  if (!e.prior.model) fail("serve", "{}: not a prior", fs::path(dir).filename().string());
  return e.prior;
}

}  // namespace lf::serve
