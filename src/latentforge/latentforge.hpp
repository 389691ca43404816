// latentforge's C++ API (installed as <latentforge/latentforge.hpp>): open a trained or imported
// image autoencoder, encode / decode / reconstruct images (large ones streamed exactly in bounded
// memory), sample from a prior over VQ codes, and train from a config. Tensors are LibTorch's.
// Stability: see docs/library.md. Everything here is stable within a minor version (0.x).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "latentforge/version.h"

// The library is built with hidden visibility: only what carries this is exported.
#define LATENTFORGE_API __attribute__((visibility("default")))

namespace latentforge {

// The version of the library actually loaded (compare with LATENTFORGE_VERSION, the headers').
LATENTFORGE_API std::string version();

// Why a call failed; the same numbers as the C API's lf_status.
enum class ErrorCode : int {
  invalid_argument = 1,  // a null / empty argument or an option out of range
  not_found = 2,         // a path that does not exist
  bad_input = 3,         // a file or value that was read and rejected (format, keys, config)
  shape = 4,             // a tensor of the wrong rank, size or dtype for this model
  unsupported = 5,       // the operation does not apply to this kind of model
  out_of_memory = 6,
  internal = 7,  // anything else (a bug: please report it)
};

// Every failure of this API: one line naming what failed and what was expected.
class LATENTFORGE_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// CPU threads of LibTorch's intra-op pool, process-wide; 0 = all cores (the default the library
// applies at the first open unless this was called).
LATENTFORGE_API void set_num_threads(int threads);

struct OpenOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N" or "auto"
  bool use_ema = true;         // run folders: the EMA weights when the run kept them
};

// What a model takes and gives.
struct ModelInfo {
  std::string kind;             // "ae", "vae", "vqvae", "vqgan", "autoencoder_kl"
  int64_t image_channels = 0;   // C of the images [N, C, H, W] in [-1, 1]
  int64_t latent_channels = 0;  // c of the latents [N, c, H/f, W/f]
  int64_t factor = 0;           // f: image pixels per latent cell along each side
  int64_t codebook_size = 0;    // K of a VQ model; 0 for continuous latents
};

// A loaded image autoencoder. Copies share the same model. Calls on one Model (and its copies)
// are serialised by an internal lock; separate Models run in parallel.
class LATENTFORGE_API Model {
 public:
  // A run folder, a checkpoint folder, or a model .safetensors with config.json beside it.
  static Model open(const std::string& path, const OpenOptions& options = {});
  // An original taming-transformers / CompVis / Stable Diffusion config (YAML) with its weights
  // (.ckpt or .safetensors; taming/CompVis, full SD checkpoint or diffusers key layouts).
  static Model open_original(const std::string& config_yaml, const std::string& weights,
                             const OpenOptions& options = {});

  const ModelInfo& info() const;

  // images [N, C, H, W] float in [-1, 1] -> latents [N, c, H/f, W/f]. VAE: the posterior mean;
  // KL autoencoder: the mean times scale_factor (Stable Diffusion's latent space); VQ: the
  // quantized latents.
  torch::Tensor encode(const torch::Tensor& images);
  // VQ models: images -> code indices [N, H/f, W/f] int64.
  torch::Tensor encode_indices(const torch::Tensor& images);
  // latents as encode() gives them -> images [N, C, H, W] in [-1, 1] (clamped).
  torch::Tensor decode(const torch::Tensor& latents);
  // VQ models: code indices [N, h, w] int64 in [0, K) -> images.
  torch::Tensor decode_indices(const torch::Tensor& indices);
  // decode(encode(images)), clamped to [-1, 1].
  torch::Tensor reconstruct(const torch::Tensor& images);
  // VAE: n images from z ~ N(0, I), reproducible by seed.
  torch::Tensor sample(int64_t n, uint64_t seed = 0);

  // VQGAN / KL autoencoder on the CPU: bound the memory of one encode / decode (bytes; the
  // process's resident weights are not counted). Images whose untiled pass would need more are
  // computed exactly in row bands. 0 = 80% of the machine's available memory (the default).
  void set_memory_limit(int64_t bytes);
  // VQGAN / KL autoencoder: always stream in row bands (exact; least memory).
  void set_streaming(bool always);
  // VQGAN / KL autoencoder: independent blended tiles of `tile` pixels (approximate: per-tile
  // normalisation; memory independent of the image size). tile 0 switches tiling off;
  // overlap -1 = a quarter of the tile.
  void set_tiling(int64_t tile, int64_t overlap = -1);

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
  friend class Prior;
};

struct SampleOptions {
  int64_t n = 16;
  int64_t class_label = -1;  // class-conditional priors: -1 cycles through the classes
  torch::Tensor condition;   // image-conditional priors: condition images [M, C, H, W] (sketches)
  int64_t grid_h = 0;        // code grid; 0 = the training grid (larger: sliding window)
  int64_t grid_w = 0;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0 = all codes
  double top_p = 1.0;  // 1 = no nucleus cut
  uint64_t seed = 0;
};

// A trained prior (PixelCNN or transformer) over a VQ model's codes, with that VQ model.
class LATENTFORGE_API Prior {
 public:
  static Prior open(const std::string& run_dir, const OpenOptions& options = {});

  std::string kind() const;     // "pixelcnn" or "gpt"
  int64_t num_classes() const;  // 0: not class-conditional
  bool image_conditional() const;
  std::vector<int64_t> grid() const;  // the training code grid [h, w]
  Model stage1() const;               // the VQ model that decodes the codes

  // Code indices [n, h, w] int64.
  torch::Tensor sample_indices(const SampleOptions& options);
  // Images [n, C, H, W] in [-1, 1]: sample_indices decoded by stage1().
  torch::Tensor sample(const SampleOptions& options);

  struct Impl;

 private:
  explicit Prior(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct TrainOptions {
  std::vector<std::string> overrides;  // "train.steps=500", as `train --set`
  bool resume = false;                 // continue the run in run_dir from its latest checkpoint
  bool force = false;                  // start over in a run folder that holds a run
  bool report = true;                  // evaluate and draw the pictures at the end
  int64_t eval_limit = 0;              // evaluate on the first N test images (0 = all)
  std::string device = "cpu";
  uint64_t seed = 0;  // used unless the config sets seed:
};

struct TrainResult {
  std::string run_dir;
  int64_t steps = 0;
  std::string metrics_json;  // metrics.json's content; empty without a report
};

// Trains a model from a YAML config (configs/) into run_dir, like `latentforge train`. Blocks
// until done; progress goes to the library's log (stderr). With resume, config_yaml may be empty.
LATENTFORGE_API TrainResult train(const std::string& config_yaml, const std::string& run_dir,
                                  const TrainOptions& options = {});

// Images from a png / jpg / bmp file, or the "images" tensor of a .safetensors file, as
// [N, C, H, W] float in [-1, 1]; channels 0 keeps the file's, 1 or 3 converts.
LATENTFORGE_API torch::Tensor read_images(const std::string& path, int64_t channels = 0);
// [N, C, H, W] in [-1, 1] -> a png / jpg (a grid of nrow per row when N > 1) or .safetensors.
LATENTFORGE_API void write_images(const std::string& path, const torch::Tensor& images,
                                  int64_t nrow = 8);
LATENTFORGE_API std::map<std::string, torch::Tensor> read_safetensors(const std::string& path);
LATENTFORGE_API void write_safetensors(const std::string& path,
                                       const std::map<std::string, torch::Tensor>& tensors);

}  // namespace latentforge
