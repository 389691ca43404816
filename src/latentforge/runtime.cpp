// The public API's process-wide pieces: version, threads, and reading / writing images and tensors.
#include <atomic>

#include "core/runtime.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "latentforge/api_errors.h"
#include "latentforge/latentforge.hpp"

namespace latentforge {

namespace {
std::atomic<bool> threads_chosen{false};
}  // namespace

std::string version() {
  return LF_VERSION;
}

void set_num_threads(int threads) {
  if (threads < 0)
    detail::fail(ErrorCode::invalid_argument,
                 fmt::format("[set_num_threads] expected >= 0 (0 = all cores), got {}", threads));
  detail::guarded("set_num_threads", [&] { lf::set_threads(threads); });
  threads_chosen = true;
}

namespace detail {
void apply_runtime_defaults() {
  if (!threads_chosen.exchange(true)) lf::set_threads(0);
}
}  // namespace detail

torch::Tensor read_images(const std::string& path, int64_t channels) {
  detail::require_path("read_images", "path", path);
  if (channels != 0 && channels != 1 && channels != 3)
    detail::fail(
        ErrorCode::invalid_argument,
        fmt::format("[read_images] channels: expected 0 (as stored), 1 or 3, got {}", channels));
  return detail::guarded("read_images", [&] { return lf::read_images(path, channels); });
}

void write_images(const std::string& path, const torch::Tensor& images, int64_t nrow) {
  if (path.empty()) detail::fail(ErrorCode::invalid_argument, "[write_images] path: empty");
  if (!images.defined() || images.dim() != 4 || images.size(0) < 1 ||
      (images.size(1) != 1 && images.size(1) != 3) || !images.is_floating_point())
    detail::fail(ErrorCode::shape,
                 fmt::format("[write_images] images: expected floats [N, 1 or 3, H, W], got {}",
                             images.defined() ? lf::shape_str(images.sizes()) : "none"));
  if (nrow < 1)
    detail::fail(ErrorCode::invalid_argument,
                 fmt::format("[write_images] nrow: expected >= 1, got {}", nrow));
  detail::guarded("write_images", [&] {
    lf::write_images(path, images.to(torch::kCPU, torch::kFloat32).clamp(-1, 1), nrow);
  });
}

std::map<std::string, torch::Tensor> read_safetensors(const std::string& path) {
  detail::require_path("read_safetensors", "path", path);
  return detail::guarded("read_safetensors", [&] { return lf::load_safetensors(path); });
}

void write_safetensors(const std::string& path,
                       const std::map<std::string, torch::Tensor>& tensors) {
  if (path.empty()) detail::fail(ErrorCode::invalid_argument, "[write_safetensors] path: empty");
  for (const auto& [name, t] : tensors)
    if (!t.defined())
      detail::fail(ErrorCode::invalid_argument,
                   fmt::format("[write_safetensors] {}: empty tensor", name));
  detail::guarded("write_safetensors", [&] { lf::save_safetensors(path, tensors); });
}

}  // namespace latentforge
