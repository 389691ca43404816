// Images and data for the server's jobs: see model_inputs.h.
#include "server/model_inputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/error.h"
#include "data/dataset_factory.h"
#include "io/image.h"
#include "model_source.h"
#include "server/image_views.h"

namespace fs = std::filesystem;

namespace lf::serve {

namespace {

// The side the model was trained at: data.image_size, 28 for IDX data (native size), 64 for image
// folders (the dataset default); 0 when the model has no data section (an imported model).
int64_t input_training_side(const Config& config) {
  if (!config.has("data")) return 0;
  const int64_t size = config.get<int64_t>("data.image_size", 0);
  if (size > 0) return size;
  const std::string root = config.get<std::string>("data.root", "");
  if (root.empty() || root == "fashion-mnist" || root == "mnist") return 28;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find("idx3-ubyte") != std::string::npos) return 28;
  return 64;
}

// The downsampling factor of the taming / ldm coders, 2^(len(ch_mult) - 1); 16 when unknown.
int64_t input_factor(const Config& config) {
  for (const char* key : {"model.ddconfig.ch_mult", "model.ch_mult"})
    if (const Json* mult = config.find(key); mult && mult->is_array() && !mult->empty())
      return int64_t{1} << (mult->size() - 1);
  return 16;
}

}  // namespace

void check_upload(const std::string& bytes, const std::string& what, const UploadLimits& limits) {
  const ImageInfo info = probe_image(bytes, what);
  const double megapixels = static_cast<double>(info.width) * info.height / 1e6;
  if (megapixels > limits.max_megapixels)
    throw UploadTooLarge(fmt::format("{} is {}x{} ({:.1f} megapixels): expected at most {}", what,
                                     info.width, info.height, megapixels, limits.max_megapixels));
}

ImageSource parse_image_source(const Json& spec, const std::string& what,
                               const UploadLimits& limits) {
  ImageSource source;
  if (spec.is_object() && spec.contains("test_index") && spec["test_index"].is_number_integer() &&
      spec.size() == 1) {
    source.test_index = spec["test_index"].get<int64_t>();
    if (source.test_index < 0) fail("serve", "{}.test_index: expected >= 0", what);
    return source;
  }
  if (spec.is_object() && spec.contains("upload") && spec["upload"].is_string() &&
      spec.size() == 1) {
    source.upload = base64_decode(spec["upload"].get<std::string>(), what + ".upload");
    if (source.upload.empty()) fail("serve", "{}.upload: empty", what);
    check_upload(source.upload, what, limits);
    return source;
  }
  fail("serve", "{}: expected {{\"test_index\": N}} or {{\"upload\": \"<base64 image>\"}}", what);
}

std::shared_ptr<const Dataset> open_test_split(const Config& run_config) {
  if (!run_config.has("data")) return nullptr;
  DatasetSpec spec = DatasetSpec::from_config(run_config.sub("data"));
  spec.limit = 0;
  // Opened once per dataset (Fashion-MNIST's test split is 8 MB to read): datasets are read-only
  // and safe to share between threads.
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const Dataset>> opened;
  const std::string key = spec.to_json().dump();
  std::lock_guard<std::mutex> lock(mutex);
  if (const auto it = opened.find(key); it != opened.end()) return it->second;
  std::shared_ptr<const Dataset> data = lf::open_test_split(spec);
  if (!data) data = open_dataset(spec);  // image folders: their one split
  if (opened.size() >= 8) opened.clear();
  opened[key] = data;
  return data;
}

torch::Tensor to_model_input(torch::Tensor x, const Config& config, int64_t max_side) {
  const int64_t side = input_training_side(config);
  if (side > 0) return center_crop_resize(x, side, side);
  int64_t h = x.size(1), w = x.size(2);
  if (std::max(h, w) > max_side) {
    const double s = static_cast<double>(max_side) / std::max(h, w);
    h = std::max<int64_t>(1, std::llround(h * s));
    w = std::max<int64_t>(1, std::llround(w * s));
    x = resize_image(x, h, w);
  }
  const int64_t f = input_factor(config);
  const int64_t ch = std::max(f, h / f * f), cw = std::max(f, w / f * f);
  if (ch != h || cw != w) x = center_crop_resize(x, ch, cw);
  return x;
}

torch::Tensor load_image_source(const ImageSource& source, const Config& run_config,
                                const Dataset* test, int64_t max_side, const std::string& what) {
  const int64_t channels = cli::model_in_channels(run_config);
  if (source.test_index >= 0) {
    if (!test) fail("serve", "{}: this model has no test images (give an upload)", what);
    if (source.test_index >= test->size())
      fail("serve", "{}.test_index {}: expected < {} (the test split's size)", what,
           source.test_index, test->size());
    torch::Tensor x = test->get_image(source.test_index);
    if (channels == 3 && x.size(0) == 1) x = x.expand({3, -1, -1}).contiguous();
    if (channels == 1 && x.size(0) == 3) x = x.mean(0, true);
    return to_model_input(x, run_config, max_side);
  }
  return to_model_input(
      decode_image(source.upload, what, channels == 1 || channels == 3 ? channels : 0), run_config,
      max_side);
}

std::string without_path(std::string message, const ServedModel& model) {
  for (size_t at = 0; (at = message.find(model.dir, at)) != std::string::npos;
       at += model.name.size())
    message.replace(at, model.dir.size(), model.name);
  return message;
}

}  // namespace lf::serve
