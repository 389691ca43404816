// latentforge's C API (latentforge.h) over the C++ API: handles own a Model / Prior, every entry
// point catches everything and returns a status, and the message is kept per thread.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "latentforge/api_errors.h"
#include "latentforge/latentforge.h"
#include "latentforge/latentforge.hpp"

struct lf_model {
  latentforge::Model model;
};

struct lf_prior {
  latentforge::Prior prior;
};

namespace {

using latentforge::Error;
using latentforge::ErrorCode;

thread_local std::string last_error;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_argument, message);
}

// Runs fn and turns whatever it throws into a status and this thread's message.
template <typename F>
lf_status call(const char* where, F&& fn) {
  last_error.clear();
  try {
    latentforge::detail::guarded(where, fn);
    return LF_OK;
  } catch (const Error& e) {
    last_error = e.what();
    return static_cast<lf_status>(e.code());
  } catch (...) {  // guarded() converts every std::exception; this is the rest
    last_error = std::string("[") + where + "] unknown error";
    return LF_ERROR_INTERNAL;
  }
}

template <typename T>
T& require(const char* where, const char* what, T* p) {
  if (!p) invalid(fmt::format("[{}] {}: NULL", where, what));
  return *p;
}

void clear(lf_tensor* out) {
  if (!out) return;
  out->dtype = LF_FLOAT32;
  out->ndim = 0;
  std::memset(out->shape, 0, sizeof(out->shape));
  out->data = nullptr;
}

// A view of the caller's buffer (no copy; the caller keeps it alive for the call).
torch::Tensor from_c(const char* where, const char* what, const lf_tensor* t) {
  const lf_tensor& in = require(where, what, t);
  if (in.ndim < 1 || in.ndim > LF_MAX_DIMS)
    throw Error(ErrorCode::shape,
                fmt::format("[{}] {}: ndim {}, expected 1..{}", where, what, in.ndim, LF_MAX_DIMS));
  std::vector<int64_t> shape(in.shape, in.shape + in.ndim);
  int64_t count = 1;
  for (const int64_t s : shape) {
    if (s < 1 || s > (int64_t{1} << 40))
      throw Error(ErrorCode::shape, fmt::format("[{}] {}: shape {} has a size outside 1..2^40",
                                                where, what, lf::shape_str(shape)));
    if (count > (int64_t{1} << 40) / s)
      throw Error(ErrorCode::shape, fmt::format("[{}] {}: shape {} holds more than 2^40 values",
                                                where, what, lf::shape_str(shape)));
    count *= s;
  }
  if (!in.data) invalid(fmt::format("[{}] {}: data is NULL", where, what));
  torch::ScalarType type;
  switch (in.dtype) {
    case LF_FLOAT32:
      type = torch::kFloat32;
      break;
    case LF_INT64:
      type = torch::kInt64;
      break;
    default:
      throw Error(ErrorCode::shape,
                  fmt::format("[{}] {}: dtype {}, expected LF_FLOAT32 or LF_INT64", where, what,
                              static_cast<int>(in.dtype)));
  }
  return torch::from_blob(in.data, shape, torch::TensorOptions().dtype(type));
}

// Copies t into a malloc'ed buffer the caller frees with lf_tensor_free.
void to_c(const char* where, const torch::Tensor& t, lf_tensor* out) {
  if (t.dim() > LF_MAX_DIMS)
    throw Error(ErrorCode::internal, fmt::format("[{}] result has {} dims", where, t.dim()));
  const bool integral = !t.is_floating_point();
  const auto host = t.to(torch::kCPU, integral ? torch::kInt64 : torch::kFloat32).contiguous();
  const size_t bytes = static_cast<size_t>(host.numel()) * host.element_size();
  void* data = std::malloc(bytes == 0 ? 1 : bytes);
  if (!data) throw std::bad_alloc();
  std::memcpy(data, host.data_ptr(), bytes);
  out->dtype = integral ? LF_INT64 : LF_FLOAT32;
  out->ndim = static_cast<int32_t>(host.dim());
  std::memset(out->shape, 0, sizeof(out->shape));
  for (int64_t i = 0; i < host.dim(); ++i) out->shape[i] = host.size(i);
  out->data = data;
}

lf_tensor& output(const char* where, const char* what, lf_tensor* out) {
  lf_tensor& o = require(where, what, out);
  clear(&o);
  return o;
}

// The model's tensor -> tensor calls: `in` borrowed from the caller, `out` filled for it.
lf_status model_call(const char* where, lf_model* model, const char* in_name, const lf_tensor* in,
                     const char* out_name, lf_tensor* out,
                     torch::Tensor (latentforge::Model::*method)(const torch::Tensor&)) {
  return call(where, [&] {
    auto& o = output(where, out_name, out);
    auto& m = require(where, "model", model).model;
    to_c(where, (m.*method)(from_c(where, in_name, in)), &o);
  });
}

std::string device_name(const char* device) {
  return device ? device : "cpu";
}

std::string text(const char* where, const char* what, const char* s) {
  if (!s) invalid(fmt::format("[{}] {}: NULL", where, what));
  return s;
}

}  // namespace

extern "C" {

const char* lf_version(void) {
  return LATENTFORGE_VERSION;
}

const char* lf_last_error(void) {
  return last_error.c_str();
}

lf_status lf_set_num_threads(int threads) {
  return call("lf_set_num_threads", [&] { latentforge::set_num_threads(threads); });
}

lf_status lf_model_open(const char* path, const char* device, lf_model** out) {
  const char* where = "lf_model_open";
  if (out) *out = nullptr;
  return call(where, [&] {
    require(where, "out", out);
    latentforge::OpenOptions options;
    options.device = device_name(device);
    auto model = latentforge::Model::open(text(where, "path", path), options);
    *out = new lf_model{std::move(model)};
  });
}

lf_status lf_model_open_original(const char* config_yaml, const char* weights, const char* device,
                                 lf_model** out) {
  const char* where = "lf_model_open_original";
  if (out) *out = nullptr;
  return call(where, [&] {
    require(where, "out", out);
    latentforge::OpenOptions options;
    options.device = device_name(device);
    auto model = latentforge::Model::open_original(text(where, "config_yaml", config_yaml),
                                                   text(where, "weights", weights), options);
    *out = new lf_model{std::move(model)};
  });
}

void lf_model_close(lf_model* model) {
  delete model;
}

lf_status lf_model_get_info(const lf_model* model, lf_model_info* out) {
  const char* where = "lf_model_get_info";
  return call(where, [&] {
    const auto& info = require(where, "model", model).model.info();
    lf_model_info& o = require(where, "out", out);
    std::memset(&o, 0, sizeof(o));
    std::strncpy(o.kind, info.kind.c_str(), sizeof(o.kind) - 1);
    o.image_channels = info.image_channels;
    o.latent_channels = info.latent_channels;
    o.factor = info.factor;
    o.codebook_size = info.codebook_size;
  });
}

lf_status lf_model_set_memory_limit(lf_model* model, int64_t bytes) {
  const char* where = "lf_model_set_memory_limit";
  return call(where, [&] { require(where, "model", model).model.set_memory_limit(bytes); });
}

lf_status lf_model_set_streaming(lf_model* model, int always) {
  const char* where = "lf_model_set_streaming";
  return call(where, [&] { require(where, "model", model).model.set_streaming(always != 0); });
}

lf_status lf_model_set_tiling(lf_model* model, int64_t tile, int64_t overlap) {
  const char* where = "lf_model_set_tiling";
  return call(where, [&] { require(where, "model", model).model.set_tiling(tile, overlap); });
}

lf_status lf_encode(lf_model* model, const lf_tensor* images, lf_tensor* latents) {
  return model_call("lf_encode", model, "images", images, "latents", latents,
                    &latentforge::Model::encode);
}

lf_status lf_encode_indices(lf_model* model, const lf_tensor* images, lf_tensor* indices) {
  return model_call("lf_encode_indices", model, "images", images, "indices", indices,
                    &latentforge::Model::encode_indices);
}

lf_status lf_decode(lf_model* model, const lf_tensor* latents, lf_tensor* images) {
  return model_call("lf_decode", model, "latents", latents, "images", images,
                    &latentforge::Model::decode);
}

lf_status lf_decode_indices(lf_model* model, const lf_tensor* indices, lf_tensor* images) {
  return model_call("lf_decode_indices", model, "indices", indices, "images", images,
                    &latentforge::Model::decode_indices);
}

lf_status lf_reconstruct(lf_model* model, const lf_tensor* images, lf_tensor* out) {
  return model_call("lf_reconstruct", model, "images", images, "out", out,
                    &latentforge::Model::reconstruct);
}

lf_status lf_sample(lf_model* model, int64_t n, uint64_t seed, lf_tensor* images) {
  const char* where = "lf_sample";
  return call(where, [&] {
    auto& o = output(where, "images", images);
    to_c(where, require(where, "model", model).model.sample(n, seed), &o);
  });
}

lf_status lf_prior_open(const char* run_dir, const char* device, lf_prior** out) {
  const char* where = "lf_prior_open";
  if (out) *out = nullptr;
  return call(where, [&] {
    require(where, "out", out);
    latentforge::OpenOptions options;
    options.device = device_name(device);
    auto prior = latentforge::Prior::open(text(where, "run_dir", run_dir), options);
    *out = new lf_prior{std::move(prior)};
  });
}

void lf_prior_close(lf_prior* prior) {
  delete prior;
}

void lf_sample_options_init(lf_sample_options* options) {
  if (!options) return;
  *options = lf_sample_options{};
  options->n = 16;
  options->class_label = -1;
  options->temperature = 1.0;
  options->top_p = 1.0;
}

lf_status lf_prior_sample(lf_prior* prior, const lf_sample_options* options, lf_tensor* images,
                          lf_tensor* indices) {
  const char* where = "lf_prior_sample";
  if (indices) clear(indices);
  return call(where, [&] {
    auto& o = output(where, "images", images);
    auto& p = require(where, "prior", prior).prior;
    const auto& c = require(where, "options", options);
    latentforge::SampleOptions s;
    s.n = c.n;
    s.class_label = c.class_label;
    s.grid_h = c.grid_h;
    s.grid_w = c.grid_w;
    s.temperature = c.temperature;
    s.top_k = c.top_k;
    s.top_p = c.top_p;
    s.seed = c.seed;
    const auto codes = p.sample_indices(s);
    auto stage1 = p.stage1();
    std::vector<torch::Tensor> decoded;
    for (int64_t begin = 0; begin < codes.size(0); begin += 256)
      decoded.push_back(stage1.decode_indices(codes.slice(0, begin, begin + 256)));
    to_c(where, torch::cat(decoded), &o);
    if (indices) {
      try {
        to_c(where, codes, indices);
      } catch (...) {
        lf_tensor_free(&o);
        throw;
      }
    }
  });
}

lf_status lf_train(const char* config_yaml, const char* run_dir, const char* const* overrides,
                   size_t num_overrides, int resume) {
  const char* where = "lf_train";
  return call(where, [&] {
    latentforge::TrainOptions options;
    options.resume = resume != 0;
    if (num_overrides > 0 && !overrides) invalid("[lf_train] overrides: NULL with a count");
    for (size_t i = 0; i < num_overrides; ++i)
      options.overrides.push_back(text(where, "overrides[i]", overrides[i]));
    const std::string config = config_yaml ? config_yaml : "";
    if (!options.resume && config.empty()) invalid("[lf_train] config_yaml: NULL");
    latentforge::train(config, text(where, "run_dir", run_dir), options);
  });
}

lf_status lf_read_images(const char* path, int64_t channels, lf_tensor* images) {
  const char* where = "lf_read_images";
  return call(where, [&] {
    auto& o = output(where, "images", images);
    to_c(where, latentforge::read_images(text(where, "path", path), channels), &o);
  });
}

lf_status lf_write_images(const char* path, const lf_tensor* images, int64_t nrow) {
  const char* where = "lf_write_images";
  return call(where, [&] {
    latentforge::write_images(text(where, "path", path), from_c(where, "images", images), nrow);
  });
}

lf_status lf_read_tensor(const char* path, const char* name, lf_tensor* out) {
  const char* where = "lf_read_tensor";
  return call(where, [&] {
    auto& o = output(where, "out", out);
    const std::string file = text(where, "path", path);
    const auto tensors = latentforge::read_safetensors(file);
    torch::Tensor t;
    if (name) {
      const auto it = tensors.find(name);
      if (it == tensors.end()) {
        std::string names;
        for (const auto& [k, v] : tensors) names += (names.empty() ? "" : ", ") + k;
        throw Error(ErrorCode::bad_input, fmt::format("[{}] {}: no tensor '{}' (it holds: {})",
                                                      where, file, name, names));
      }
      t = it->second;
    } else {
      if (tensors.size() != 1)
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("[{}] {}: holds {} tensors; name the one to read", where, file,
                                tensors.size()));
      t = tensors.begin()->second;
    }
    if (t.dim() < 1 || t.dim() > LF_MAX_DIMS)
      throw Error(ErrorCode::shape, fmt::format("[{}] {}: a {}-dimensional tensor, expected 1..{}",
                                                where, file, t.dim(), LF_MAX_DIMS));
    if (t.scalar_type() == torch::kBool) t = t.to(torch::kInt64);
    to_c(where, t, &o);
  });
}

void lf_tensor_free(lf_tensor* tensor) {
  if (!tensor) return;
  std::free(tensor->data);
  clear(tensor);
}

}  // extern "C"
