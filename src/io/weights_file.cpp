// Weight files by format: see weights_file.h. The format is told by the first bytes; the
// .safetensors extension also decides, so that a broken file gets the safetensors reader's error.
#include "io/weights_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

namespace lf {

TensorMap read_weights_file(const std::string& path) {
  constexpr const char* kWhere = "weights_file::read";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail(kWhere,
         "{}: is a directory; expected a weight file (for a diffusers folder, its "
         "vae/diffusion_pytorch_model.safetensors)",
         path);
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) {
    if (errno == ENOENT) fail(kWhere, "{}: no such file", path);
    fail(kWhere, "{}: cannot open: {}", path, std::strerror(errno));
  }
  unsigned char head[512] = {};
  const size_t n = std::fread(head, 1, sizeof(head), file);
  std::fclose(file);

  const bool safetensors_ext =
      path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
  // safetensors: an 8-byte little-endian header length, then the JSON header "{...".
  if ((n >= 9 && head[8] == '{') || safetensors_ext) return load_safetensors(path);
  // torch.save: a zip archive since PyTorch 1.6; a pickle or a tar before (refused there with a
  // line on how to convert).
  const bool zip = n >= 4 && std::memcmp(head, "PK", 2) == 0;
  const bool pickle = n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;
  const bool tar = n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0;
  if (zip || pickle || tar) return read_torch_checkpoint(path);
  fail(kWhere,
       "{}: unknown weight file format (supported: .safetensors, and PyTorch/Lightning "
       "checkpoints saved by torch.save since PyTorch 1.6: .ckpt, .pt, .pth, .bin)",
       path);
}

}  // namespace lf
