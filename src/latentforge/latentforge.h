/* latentforge's C API (installed as <latentforge/latentforge.h>): what other languages bind to
 * (ctypes, cgo, Rust FFI, C#). Opaque handles, status codes with a message, no exceptions across
 * the boundary, and explicit ownership: every lf_tensor the library fills is the caller's to free
 * with lf_tensor_free.
 *
 * Thread safety: calls on one handle are serialised by a lock inside it; different handles may be
 * used from different threads at once. lf_last_error() is per thread. All handles share
 * LibTorch's process-wide CPU thread pool (lf_set_num_threads).
 *
 * Images are float32 [N, C, H, W] in [-1, 1]; latents float32 [N, c, H/f, W/f]; code indices
 * int64 [N, H/f, W/f]. All tensors are dense and row-major (C order). */
#ifndef LATENTFORGE_H
#define LATENTFORGE_H

#include <stddef.h>
#include <stdint.h>

#include "latentforge/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LF_API __attribute__((visibility("default")))

typedef enum lf_status {
  LF_OK = 0,
  LF_ERROR_INVALID_ARGUMENT = 1, /* a null handle or pointer, an option out of range */
  LF_ERROR_NOT_FOUND = 2,        /* a path that does not exist */
  LF_ERROR_BAD_INPUT = 3,        /* a file or value that was read and rejected */
  LF_ERROR_SHAPE = 4,            /* a tensor of the wrong rank, size or dtype for this model */
  LF_ERROR_UNSUPPORTED = 5,      /* the operation does not apply to this kind of model */
  LF_ERROR_OUT_OF_MEMORY = 6,
  LF_ERROR_INTERNAL = 7 /* anything else (a bug: please report it) */
} lf_status;

typedef enum lf_dtype { LF_FLOAT32 = 0, LF_INT64 = 1 } lf_dtype;

#define LF_MAX_DIMS 8

/* A dense row-major tensor. As input the caller owns `data`; as output the library allocates it
 * and the caller releases it with lf_tensor_free. Initialise outputs with LF_TENSOR_INIT (or zero
 * them): a failing call leaves its outputs empty (data NULL). */
typedef struct lf_tensor {
  lf_dtype dtype;
  int32_t ndim;
  int64_t shape[LF_MAX_DIMS];
  void* data;
} lf_tensor;
#define LF_TENSOR_INIT \
  { LF_FLOAT32, 0, {0}, NULL }

typedef struct lf_model lf_model; /* an image autoencoder */
typedef struct lf_prior lf_prior; /* a prior over a VQ model's codes, with that VQ model */

typedef struct lf_model_info {
  char kind[32];           /* "ae", "vae", "vqvae", "vqgan", "autoencoder_kl" */
  int64_t image_channels;  /* C */
  int64_t latent_channels; /* c */
  int64_t factor;          /* f: image pixels per latent cell along each side */
  int64_t codebook_size;   /* K of a VQ model; 0 for continuous latents */
} lf_model_info;

typedef struct lf_sample_options {
  int64_t n;           /* images to draw */
  int64_t class_label; /* class-conditional priors: -1 cycles through the classes */
  int64_t grid_h;      /* code grid; 0 = the training grid (larger: a sliding window) */
  int64_t grid_w;
  double temperature;
  int64_t top_k; /* 0 = all codes */
  double top_p;  /* 1 = no nucleus cut */
  uint64_t seed;
} lf_sample_options;

/* The version of the loaded library, "MAJOR.MINOR.PATCH". */
LF_API const char* lf_version(void);
/* The message of this thread's last failing call ("" when none). Valid until the next call. */
LF_API const char* lf_last_error(void);
/* LibTorch's CPU threads, process-wide; 0 = all cores (the default applied at the first open). */
LF_API lf_status lf_set_num_threads(int threads);

/* device: "cpu", "cuda", "cuda:N", "auto", or NULL for "cpu". */
/* A run folder, a checkpoint folder, or a model .safetensors with config.json beside it. */
LF_API lf_status lf_model_open(const char* path, const char* device, lf_model** out);
/* An original taming / CompVis / Stable Diffusion YAML config with its weights. */
LF_API lf_status lf_model_open_original(const char* config_yaml, const char* weights,
                                        const char* device, lf_model** out);
/* Releases the model; NULL is ignored. */
LF_API void lf_model_close(lf_model* model);
LF_API lf_status lf_model_get_info(const lf_model* model, lf_model_info* out);
/* VQGAN / KL autoencoder on the CPU: the memory bound of one encode / decode in bytes (0 = 80% of
 * the available memory); larger images are computed exactly in row bands. */
LF_API lf_status lf_model_set_memory_limit(lf_model* model, int64_t bytes);
/* VQGAN / KL autoencoder: always (always != 0) encode / decode in row bands: exact, least memory.
 */
LF_API lf_status lf_model_set_streaming(lf_model* model, int always);
/* VQGAN / KL autoencoder: blended tiles of `tile` pixels (approximate); 0 = off, overlap -1 = a
 * quarter of the tile. */
LF_API lf_status lf_model_set_tiling(lf_model* model, int64_t tile, int64_t overlap);

/* images -> latents (VAE: the mean; KL autoencoder: the mean times scale_factor, as Stable
 * Diffusion's latents; VQ: the quantized latents). */
LF_API lf_status lf_encode(lf_model* model, const lf_tensor* images, lf_tensor* latents);
/* VQ models: images -> code indices (int64). */
LF_API lf_status lf_encode_indices(lf_model* model, const lf_tensor* images, lf_tensor* indices);
LF_API lf_status lf_decode(lf_model* model, const lf_tensor* latents, lf_tensor* images);
LF_API lf_status lf_decode_indices(lf_model* model, const lf_tensor* indices, lf_tensor* images);
LF_API lf_status lf_reconstruct(lf_model* model, const lf_tensor* images, lf_tensor* out);
/* VAE: n images from z ~ N(0, I). */
LF_API lf_status lf_sample(lf_model* model, int64_t n, uint64_t seed, lf_tensor* images);

LF_API lf_status lf_prior_open(const char* run_dir, const char* device, lf_prior** out);
LF_API void lf_prior_close(lf_prior* prior);
/* Defaults: n 16, class_label -1, the training grid, temperature 1, top_k 0, top_p 1, seed 0. */
LF_API void lf_sample_options_init(lf_sample_options* options);
/* Images, and the sampled code indices when `indices` is not NULL. */
LF_API lf_status lf_prior_sample(lf_prior* prior, const lf_sample_options* options,
                                 lf_tensor* images, lf_tensor* indices);

/* Trains from a YAML config into run_dir, like `latentforge train --config C --out D [--set ...]`
 * (resume != 0: `--resume D`, config may be NULL). Blocks until done. */
LF_API lf_status lf_train(const char* config_yaml, const char* run_dir,
                          const char* const* overrides, size_t num_overrides, int resume);

/* png / jpg / bmp, or the "images" of a .safetensors file; channels 0 keeps the file's. */
LF_API lf_status lf_read_images(const char* path, int64_t channels, lf_tensor* images);
/* A png / jpg (a grid of nrow per row when N > 1) or a .safetensors file, written atomically. */
LF_API lf_status lf_write_images(const char* path, const lf_tensor* images, int64_t nrow);
/* One tensor of a .safetensors file (name NULL: the file must hold exactly one), as float32 or
 * int64 (other float types are converted to float32, integer types to int64). */
LF_API lf_status lf_read_tensor(const char* path, const char* name, lf_tensor* out);

/* Frees a tensor the library filled and empties it; NULL and empty tensors are ignored. */
LF_API void lf_tensor_free(lf_tensor* tensor);

#ifdef __cplusplus
}
#endif

#endif /* LATENTFORGE_H */
