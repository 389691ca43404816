// The models `serve` offers: run folders and imported model folders found one level below the
// --models folders (or a --models folder that is itself one), each addressed by an id made from
// its folder name. The browser only ever sends such an id; paths never leave this file's callers.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lf::serve {

using Json = nlohmann::json;

struct ServedModel {
  std::string id;       // [A-Za-z0-9._-]+, unique among the listed models
  std::string name;     // the folder's name
  std::string dir;      // the folder (never sent to the browser)
  std::string kind;     // config.json model.type: vqvae, vae, vqgan, autoencoder_kl, gpt, ...
  std::string weights;  // the .safetensors the loaders would read; "" before the first checkpoint
  Json config;          // config.json (the whole run config), or null
  int64_t weight_bytes = 0;
  int64_t parameters = -1;          // from the weights file's header; -1 when unreadable
  Json metrics;                     // metrics.json, or null
  bool has_log = false;             // log.jsonl: a training run that the train page can follow
  std::vector<std::string> images;  // of the run's pictures: reconstructions, training_curves, ...
  std::string error;                // why the folder could not be read (it is listed all the same)

  bool ready() const;         // readable, with weights
  bool reconstructs() const;  // an image autoencoder
  bool has_codes() const;     // a VQ model: the codebook page
  bool has_latent() const;    // a continuous latent: the latent page
  bool is_prior() const;      // gpt, pixelcnn: the sample page
  Json to_json() const;       // what GET /api/models says about it (no paths)
};

// The pictures a run folder may hold, by the name the API uses ("<name>.png" in the folder).
const std::vector<std::string>& run_image_names();

class ServedModels {
 public:
  explicit ServedModels(std::vector<std::string> roots);

  // Lists the folders again (they change while runs train) and renews the id map.
  std::vector<ServedModel> scan();
  // The model with this id from a fresh scan; nullopt when there is none.
  std::optional<ServedModel> find(const std::string& id);

 private:
  std::vector<std::string> roots_;
  std::mutex mutex_;
};

}  // namespace lf::serve
