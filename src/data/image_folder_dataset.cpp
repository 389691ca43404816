// Image-folder listing and per-item decoding.
#include "data/image_folder_dataset.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/image.h"

namespace fs = std::filesystem;

namespace lf {

ImageFolderDataset::ImageFolderDataset(ImageFolderOptions options) : options_(std::move(options)) {
  std::error_code ec;
  if (!fs::is_directory(options_.root, ec))
    fail("image_folder", "{}: no such directory", options_.root);
  if (options_.image_size <= 0 || options_.image_size > 4096)
    fail("image_folder", "{}: image_size {}: expected 1..4096", options_.root, options_.image_size);
  if (options_.channels != 1 && options_.channels != 3)
    fail("image_folder", "{}: channels {}: expected 1 or 3", options_.root, options_.channels);
  for (auto it = fs::recursive_directory_iterator(
           options_.root, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) fail("image_folder", "{}: cannot list: {}", options_.root, ec.message());
    if (it->is_regular_file(ec) && is_image_path(it->path().string()))
      files_.push_back(it->path().string());
  }
  if (files_.empty())
    fail("image_folder", "{}: no images (.png, .jpg, .jpeg, .bmp) found", options_.root);
  std::sort(files_.begin(), files_.end());

  // Classes: the first path component below the root, used only when every image has one.
  std::vector<std::string> first_dirs;
  bool all_in_dirs = true;
  for (const auto& f : files_) {
    const auto rel = fs::path(f).lexically_relative(options_.root);
    if (std::distance(rel.begin(), rel.end()) < 2) {
      all_in_dirs = false;
      break;
    }
    first_dirs.push_back(rel.begin()->string());
  }
  if (all_in_dirs) {
    classes_ = first_dirs;
    std::sort(classes_.begin(), classes_.end());
    classes_.erase(std::unique(classes_.begin(), classes_.end()), classes_.end());
    if (classes_.size() > 1) {
      for (const auto& d : first_dirs)
        labels_.push_back(std::lower_bound(classes_.begin(), classes_.end(), d) - classes_.begin());
    } else {
      classes_.clear();
    }
  }
}

std::vector<int64_t> ImageFolderDataset::image_shape() const {
  return {options_.channels, options_.image_size, options_.image_size};
}

torch::Tensor ImageFolderDataset::get_image(int64_t index) const {
  check_index(index, "image_folder::get_image");
  auto image = load_image(files_[index], options_.channels);
  return center_crop_resize(image, options_.image_size, options_.image_size);
}

int64_t ImageFolderDataset::get_label(int64_t index) const {
  check_index(index, "image_folder::get_label");
  return labels_.empty() ? -1 : labels_[index];
}

std::string ImageFolderDataset::describe() const {
  return fmt::format("{} ({} images, {} classes, {}x{}x{})", options_.root, files_.size(),
                     classes_.size(), options_.channels, options_.image_size, options_.image_size);
}

}  // namespace lf
