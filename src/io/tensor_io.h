// Inputs and outputs of every subcommand: images (png/jpg) or .safetensors files whose image batch
// is the key "images" (float32 [N, C, H, W] in [-1, 1]).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace lf {

inline constexpr const char* kImagesKey = "images";

bool is_safetensors_path(const std::string& path);

// An image file -> [1, C, H, W]; a .safetensors file -> its "images" tensor, checked to be
// float [N, C, H, W]. `channels` (0 = as stored) converts image files.
torch::Tensor read_images(const std::string& path, int64_t channels = 0);

// .safetensors -> {"images": ...}; an image path -> one image when N = 1, else a grid.
void write_images(const std::string& path, const torch::Tensor& images, int64_t nrow = 8);

// Reads one named tensor from a .safetensors file with a clear error when the key is absent.
torch::Tensor read_tensor(const std::string& path, const std::string& key);

}  // namespace lf
