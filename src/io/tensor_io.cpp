// Image / safetensors dispatch for subcommand inputs and outputs.
#include "io/tensor_io.h"

#include <algorithm>

#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"

namespace lf {

bool is_safetensors_path(const std::string& path) {
  const std::string ext = ".safetensors";
  return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

torch::Tensor read_tensor(const std::string& path, const std::string& key) {
  SafetensorsReader reader(path);
  if (!reader.contains(key)) {
    // Name a few of the keys: a weights file passed by mistake has hundreds.
    const auto all = reader.keys();
    std::string keys;
    for (size_t i = 0; i < std::min<size_t>(all.size(), 8); ++i)
      keys += (keys.empty() ? "" : ", ") + all[i];
    if (all.size() > 8) keys += fmt::format(", ... {} in all", all.size());
    fail("read_tensor", "{}: no tensor '{}' (has: {})", path, key, keys.empty() ? "none" : keys);
  }
  return reader.get(key);
}

torch::Tensor read_images(const std::string& path, int64_t channels) {
  if (is_safetensors_path(path)) {
    auto images = read_tensor(path, kImagesKey);
    if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3))
      fail("read_images", "{}: '{}' has shape {}: expected [N, C, H, W] with C in {{1, 3}}", path,
           kImagesKey, shape_str(images.sizes()));
    if (!images.is_floating_point())
      fail("read_images", "{}: '{}' is {}: expected a float tensor in [-1, 1]", path, kImagesKey,
           c10::toString(images.scalar_type()));
    return images.to(torch::kFloat32);
  }
  if (is_image_path(path)) return load_image(path, channels).unsqueeze(0);
  fail("read_images", "{}: expected a .png/.jpg/.jpeg/.bmp image or a .safetensors file", path);
}

void write_images(const std::string& path, const torch::Tensor& images, int64_t nrow) {
  if (images.dim() != 4)
    fail("write_images", "{}: expected [N, C, H, W], got {}", path, shape_str(images.sizes()));
  if (is_safetensors_path(path)) {
    save_safetensors(path,
                     {{kImagesKey, images.detach().to(torch::kCPU, torch::kFloat32).contiguous()}});
  } else if (images.size(0) == 1) {
    save_image(path, images[0]);
  } else {
    save_grid(path, images, nrow);
  }
}

}  // namespace lf
