// Finding and describing the served model folders: see served_models.h.
#include "server/served_models.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "io/config.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

bool served_is_model_folder(const fs::path& dir) {
  std::error_code ec;
  // A run still before its first checkpoint is listed too (its log can be followed).
  return fs::is_regular_file(dir / "config.json", ec) &&
         (fs::is_regular_file(dir / "model.safetensors", ec) ||
          fs::is_regular_file(dir / "checkpoints" / "latest", ec) ||
          fs::is_regular_file(dir / "log.jsonl", ec));
}

// The folder name with anything outside [A-Za-z0-9._-] replaced, so an id is safe in a URL.
std::string served_id_from_name(const std::string& name) {
  std::string id = name;
  for (auto& c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  while (!id.empty() && id.front() == '.') id.front() = '_';
  return id.empty() ? "model" : id;
}

ServedModel served_describe(const fs::path& dir) {
  ServedModel m;
  m.dir = dir.string();
  m.name = dir.filename().string();
  std::error_code ec;
  m.has_log = fs::is_regular_file(dir / "log.jsonl", ec);
  for (const auto& image : run_image_names())
    if (fs::is_regular_file(dir / (image + ".png"), ec)) m.images.push_back(image);
  try {
    const Config config = Config::from_yaml_file((dir / "config.json").string());
    m.kind = config.get<std::string>("model.type", "unknown");
    m.config = config.json();
    std::string weights_dir = m.dir;
    if (!fs::is_regular_file(dir / "model.safetensors", ec)) weights_dir = latest_checkpoint(m.dir);
    if (weights_dir.empty()) return m;  // a run before its first checkpoint: no weights yet
    m.weights = weights_dir + "/model.safetensors";
    m.weight_bytes = static_cast<int64_t>(fs::file_size(m.weights, ec));
    if (ec) m.weight_bytes = 0;
    const SafetensorsReader reader(m.weights);
    int64_t count = 0;
    for (const auto& key : reader.keys()) {
      int64_t n = 1;
      for (int64_t d : reader.info(key).shape) n *= d;
      count += n;
    }
    m.parameters = count;
    if (fs::is_regular_file(dir / "metrics.json", ec))
      m.metrics = Config::from_yaml_file((dir / "metrics.json").string()).json();
  } catch (const std::exception& e) {
    m.error = e.what();
    // The browser is told the folder's name, not where it lives.
    for (size_t at = 0; (at = m.error.find(m.dir, at)) != std::string::npos; at += m.name.size())
      m.error.replace(at, m.dir.size(), m.name);
  }
  return m;
}

}  // namespace

const std::vector<std::string>& run_image_names() {
  static const std::vector<std::string> names = {"reconstructions", "training_curves",
                                                 "codebook_usage"};
  return names;
}

bool ServedModel::ready() const {
  return error.empty() && !weights.empty();
}

bool ServedModel::reconstructs() const {
  static const std::set<std::string> kinds = {"ae", "vae", "vqvae", "vqgan", "autoencoder_kl"};
  return ready() && kinds.count(kind) > 0;
}

bool ServedModel::has_codes() const {
  return ready() && (kind == "vqvae" || kind == "vqgan");
}

bool ServedModel::has_latent() const {
  return ready() && (kind == "ae" || kind == "vae" || kind == "autoencoder_kl");
}

bool ServedModel::is_prior() const {
  return ready() && (kind == "gpt" || kind == "pixelcnn");
}

Json ServedModel::to_json() const {
  Json out = {{"id", id},
              {"name", name},
              {"kind", kind},
              {"weight_bytes", weight_bytes},
              {"parameters", parameters >= 0 ? Json(parameters) : Json()},
              {"metrics", metrics},
              {"has_log", has_log},
              {"images", images},
              {"reconstructs", reconstructs()},
              {"ready", ready()}};
  if (!error.empty()) out["error"] = error;
  return out;
}

ServedModels::ServedModels(std::vector<std::string> roots) : roots_(std::move(roots)) {}

std::vector<ServedModel> ServedModels::scan() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<fs::path> folders;
  for (const auto& root : roots_) {
    std::error_code ec;
    const fs::path base(root);
    if (served_is_model_folder(base)) {
      folders.push_back(base);
      continue;
    }
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.front() == '.') continue;
      if (served_is_model_folder(it->path())) entries.push_back(it->path());
    }
    std::sort(entries.begin(), entries.end());
    folders.insert(folders.end(), entries.begin(), entries.end());
  }
  std::vector<ServedModel> models;
  std::set<std::string> taken;
  for (const auto& folder : folders) {
    ServedModel m = served_describe(folder);
    const std::string base = served_id_from_name(m.name);
    m.id = base;
    for (int k = 2; taken.count(m.id); ++k) m.id = base + "-" + std::to_string(k);
    taken.insert(m.id);
    models.push_back(std::move(m));
  }
  return models;
}

std::optional<ServedModel> ServedModels::find(const std::string& id) {
  for (auto& m : scan())
    if (m.id == id) return m;
  return std::nullopt;
}

}  // namespace lf::serve
