// latentforge::Model and latentforge::Prior: the public face of the autoencoders and priors.
#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>

#include "core/runtime.h"
#include "latentforge/api_errors.h"
#include "latentforge/latentforge.hpp"
#include "models/ldm_autoencoder.h"
#include "models/memory_options.h"
#include "models/model_import.h"
#include "models/vector_quantizer.h"
#include "priors/prior.h"
#include "priors/prior_data.h"
#include "priors/sampling.h"
#include "train/checkpoint.h"

namespace latentforge {

using detail::fail;
using detail::guarded;

struct Model::Impl {
  std::mutex mutex;
  lf::AutoencoderPtr model;
  lf::Config config;
  torch::Device device = torch::kCPU;
  ModelInfo info;
  int64_t latent_rank = 4;  // 2 for the latent vector of the seed's conv VAE
  int64_t fixed_size = 0;   // > 0: the only image size the model takes (latent vectors)
  lf::MemoryOptions memory;
};

namespace {

torch::Device parse_device(const char* where, const std::string& name) {
  try {
    return lf::parse_device(name.empty() ? "cpu" : name);
  } catch (const std::exception& e) {
    fail(ErrorCode::invalid_argument, fmt::format("[{}] {}", where, e.what()));
  }
}

// What the model takes and gives: ldm models from their modules; the others by encoding one blank
// image of the size they were trained on (their latent shape follows from their options in ways
// that differ per model; one small encode states it for all of them).
void describe(Model::Impl& m) {
  ModelInfo& info = m.info;
  info.kind = m.model->kind();
  info.codebook_size = lf::codebook_size(*m.model);
  if (auto* ldm = dynamic_cast<lf::LdmAutoencoderImpl*>(m.model.get())) {
    info.image_channels = ldm->ddconfig().in_channels();
    info.latent_channels = ldm->post_quant_conv->weight.size(1);
    info.factor = ldm->factor();
    return;
  }
  const auto& c = m.config;
  info.image_channels = c.get<int64_t>("model.in_channels", c.get<int64_t>("data.channels", 1));
  std::vector<int64_t> sizes;
  for (const char* key : {"model.image_size", "data.image_size"})
    if (c.has(key) && c.get<int64_t>(key) > 0) sizes.push_back(c.get<int64_t>(key));
  sizes.insert(sizes.end(), {28, 32, 64});
  torch::NoGradGuard no_grad;
  for (const int64_t size : sizes) {
    lf::TensorMap code;
    try {
      code = m.model->encode(torch::zeros({1, info.image_channels, size, size}).to(m.device));
    } catch (const std::exception&) {
      continue;  // not a size this model takes
    }
    const auto latents = code.count("latents") ? code.at("latents") : code.at("mean");
    m.latent_rank = latents.dim();
    info.latent_channels = latents.size(1);
    if (latents.dim() == 4) {
      info.factor = size / latents.size(2);
    } else {
      m.fixed_size = size;
    }
    return;
  }
  fail(ErrorCode::bad_input,
       fmt::format("[Model::open] a {} model that encodes none of the image sizes {} (from its "
                   "config.json and 28, 32, 64)",
                   info.kind, lf::shape_str(sizes)));
}

void check_images(const char* where, const Model::Impl& m, const torch::Tensor& x) {
  if (!x.defined())
    fail(ErrorCode::invalid_argument, fmt::format("[{}] images: empty tensor", where));
  if (x.dim() != 4 || x.size(1) != m.info.image_channels || x.size(0) < 1 || x.size(2) < 1 ||
      x.size(3) < 1)
    fail(ErrorCode::shape, fmt::format("[{}] images: expected [N, {}, H, W], got {}", where,
                                       m.info.image_channels, lf::shape_str(x.sizes())));
  if (m.fixed_size > 0 && (x.size(2) != m.fixed_size || x.size(3) != m.fixed_size))
    fail(ErrorCode::shape,
         fmt::format("[{}] images: this {} takes {}x{} images only, got {}", where, m.info.kind,
                     m.fixed_size, m.fixed_size, lf::shape_str(x.sizes())));
  if (!x.is_floating_point())
    fail(ErrorCode::shape, fmt::format("[{}] images: expected floats in [-1, 1], got {}", where,
                                       c10::toString(x.scalar_type())));
}

void check_latents(const char* where, const Model::Impl& m, const torch::Tensor& z) {
  if (!z.defined())
    fail(ErrorCode::invalid_argument, fmt::format("[{}] latents: empty tensor", where));
  const bool ok = z.dim() == m.latent_rank && z.size(0) >= 1 &&
                  z.size(1) == m.info.latent_channels &&
                  (z.dim() == 2 || (z.size(2) >= 1 && z.size(3) >= 1));
  if (!ok)
    fail(ErrorCode::shape,
         fmt::format("[{}] latents: expected {}, got {}", where,
                     m.latent_rank == 4 ? fmt::format("[N, {}, h, w]", m.info.latent_channels)
                                        : fmt::format("[N, {}]", m.info.latent_channels),
                     lf::shape_str(z.sizes())));
  if (!z.is_floating_point())
    fail(ErrorCode::shape, fmt::format("[{}] latents: expected floats, got {}", where,
                                       c10::toString(z.scalar_type())));
}

void check_indices(const char* where, const Model::Impl& m, const torch::Tensor& codes) {
  if (m.info.codebook_size == 0)
    fail(ErrorCode::unsupported,
         fmt::format("[{}] a {} model has no codebook (code indices need a VQ model)", where,
                     m.info.kind));
  if (!codes.defined())
    fail(ErrorCode::invalid_argument, fmt::format("[{}] indices: empty tensor", where));
  if (codes.dim() != 3 || codes.numel() == 0 || codes.is_floating_point() || codes.is_complex() ||
      codes.scalar_type() == torch::kBool)
    fail(ErrorCode::shape,
         fmt::format("[{}] indices: expected integers [N, h, w], got {} {}", where,
                     c10::toString(codes.scalar_type()), lf::shape_str(codes.sizes())));
  const int64_t lo = codes.min().item<int64_t>(), hi = codes.max().item<int64_t>();
  if (lo < 0 || hi >= m.info.codebook_size)
    fail(ErrorCode::shape, fmt::format("[{}] indices: expected codes in [0, {}), got [{}, {}]",
                                       where, m.info.codebook_size, lo, hi));
}

// Memory options apply to the ldm models (VQGAN, KL autoencoder) only.
void require_ldm(const char* where, const Model::Impl& m) {
  if (!dynamic_cast<const lf::LdmAutoencoderImpl*>(m.model.get()))
    fail(ErrorCode::unsupported,
         fmt::format("[{}] a {} model: memory bounds and tiles apply to VQGAN and KL autoencoders",
                     where, m.info.kind));
}

torch::Tensor to_host(const torch::Tensor& t) {
  return t.to(torch::kCPU).contiguous();
}

}  // namespace

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model Model::open(const std::string& path, const OpenOptions& options) {
  detail::require_path("Model::open", "path", path);
  detail::apply_runtime_defaults();
  const auto device = parse_device("Model::open", options.device);
  return guarded("Model::open", [&] {
    auto impl = std::make_shared<Impl>();
    auto loaded = lf::load_model(path, device, options.use_ema);
    impl->model = loaded.model;
    impl->config = loaded.config;
    impl->device = device;
    describe(*impl);
    lf::apply_memory_options(*impl->model, impl->memory, device);
    return Model(impl);
  });
}

Model Model::open_original(const std::string& config_yaml, const std::string& weights,
                           const OpenOptions& options) {
  detail::require_path("Model::open_original", "config", config_yaml);
  detail::require_path("Model::open_original", "weights", weights);
  detail::apply_runtime_defaults();
  const auto device = parse_device("Model::open_original", options.device);
  return guarded("Model::open_original", [&] {
    auto impl = std::make_shared<Impl>();
    auto imported = lf::import_model(config_yaml, weights);
    impl->model = imported.model;
    impl->config = imported.config;
    impl->device = device;
    impl->model->to(device);
    describe(*impl);
    lf::apply_memory_options(*impl->model, impl->memory, device);
    return Model(impl);
  });
}

const ModelInfo& Model::info() const {
  return impl_->info;
}

torch::Tensor Model::encode(const torch::Tensor& images) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  check_images("Model::encode", *impl_, images);
  return guarded("Model::encode", [&] {
    torch::NoGradGuard no_grad;
    const auto code = impl_->model->encode(images.to(impl_->device, torch::kFloat32));
    return to_host(code.count("latents") ? code.at("latents") : code.at("mean"));
  });
}

torch::Tensor Model::encode_indices(const torch::Tensor& images) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->info.codebook_size == 0)
    fail(ErrorCode::unsupported,
         fmt::format("[Model::encode_indices] a {} model has no codebook (needs a VQ model)",
                     impl_->info.kind));
  check_images("Model::encode_indices", *impl_, images);
  return guarded("Model::encode_indices", [&] {
    torch::NoGradGuard no_grad;
    return to_host(impl_->model->encode(images.to(impl_->device, torch::kFloat32)).at("indices"));
  });
}

torch::Tensor Model::decode(const torch::Tensor& latents) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  check_latents("Model::decode", *impl_, latents);
  return guarded("Model::decode", [&] {
    torch::NoGradGuard no_grad;
    return to_host(impl_->model->decode({{"latents", latents.to(impl_->device, torch::kFloat32)}})
                       .clamp(-1, 1));
  });
}

torch::Tensor Model::decode_indices(const torch::Tensor& indices) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  check_indices("Model::decode_indices", *impl_, indices);
  return guarded("Model::decode_indices", [&] {
    torch::NoGradGuard no_grad;
    return to_host(
        impl_->model->decode({{"indices", indices.to(impl_->device, torch::kInt64)}}).clamp(-1, 1));
  });
}

torch::Tensor Model::reconstruct(const torch::Tensor& images) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  check_images("Model::reconstruct", *impl_, images);
  return guarded("Model::reconstruct", [&] {
    torch::NoGradGuard no_grad;
    return to_host(
        impl_->model->reconstruct(images.to(impl_->device, torch::kFloat32)).clamp(-1, 1));
  });
}

torch::Tensor Model::sample(int64_t n, uint64_t seed) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (n < 1 || n > 100000)
    fail(ErrorCode::invalid_argument,
         fmt::format("[Model::sample] n: expected 1..100000, got {}", n));
  if (impl_->info.kind != "vae")
    fail(ErrorCode::unsupported,
         fmt::format("[Model::sample] a {} model has no prior of its own (a VAE has; for VQ "
                     "models train a prior and use Prior::sample)",
                     impl_->info.kind));
  return guarded("Model::sample", [&] {
    torch::NoGradGuard no_grad;
    lf::seed_everything(seed);
    return to_host(impl_->model->sample(n).clamp(-1, 1));
  });
}

namespace {

// Applies the model's memory options changed by `edit`; they are kept only when they apply.
template <typename Edit>
void update_memory(const char* where, Model::Impl& m, bool needs_ldm, const Edit& edit) {
  if (needs_ldm) require_ldm(where, m);
  auto memory = m.memory;
  edit(memory);
  guarded(where, [&] { lf::apply_memory_options(*m.model, memory, m.device); });
  m.memory = memory;
}

}  // namespace

void Model::set_memory_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (bytes < 0)
    fail(ErrorCode::invalid_argument,
         fmt::format("[Model::set_memory_limit] expected bytes >= 0, got {}", bytes));
  update_memory("Model::set_memory_limit", *impl_, bytes > 0, [&](lf::MemoryOptions& memory) {
    memory.max_bytes = bytes;
    memory.tile = 0;
  });
}

void Model::set_streaming(bool always) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  update_memory("Model::set_streaming", *impl_, always, [&](lf::MemoryOptions& memory) {
    memory.stream = always;
    memory.tile = 0;
  });
}

void Model::set_tiling(int64_t tile, int64_t overlap) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (tile < 0 || overlap < -1 || (tile > 0 && overlap >= tile))
    fail(ErrorCode::invalid_argument,
         fmt::format("[Model::set_tiling] expected tile >= 0 and -1 <= overlap < tile, got tile "
                     "{}, overlap {}",
                     tile, overlap));
  update_memory("Model::set_tiling", *impl_, tile > 0, [&](lf::MemoryOptions& memory) {
    memory.tile = tile;
    memory.tile_overlap = overlap;
    if (tile > 0) {
      memory.stream = false;
      memory.max_bytes = 0;
    }
  });
}

struct Prior::Impl {
  std::mutex mutex;
  std::shared_ptr<lf::PriorImpl> prior;
  lf::PriorStages stages;
  std::optional<Model> stage1;    // set once open succeeds
  lf::AutoencoderPtr cond_stage;  // image-conditional priors: the condition images' VQ model
  int64_t cond_channels = 0;
  torch::Device device = torch::kCPU;
};

Prior::Prior(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Prior Prior::open(const std::string& run_dir, const OpenOptions& options) {
  detail::require_path("Prior::open", "run_dir", run_dir);
  detail::apply_runtime_defaults();
  const auto device = parse_device("Prior::open", options.device);
  auto impl = guarded("Prior::open", [&] {
    auto impl = std::make_shared<Impl>();
    auto loaded = lf::load_trainable(run_dir, device, options.use_ema);
    impl->prior = std::dynamic_pointer_cast<lf::PriorImpl>(loaded.model);
    if (!impl->prior)
      fail(ErrorCode::unsupported,
           fmt::format("[Prior::open] {}: holds a {} model, expected a prior (gpt, pixelcnn)",
                       run_dir, loaded.model->kind()));
    impl->stages = lf::PriorStages::from_config(loaded.config);
    impl->device = device;
    if (impl->prior->cond_num_codes() > 0) {
      auto cond = lf::load_model(impl->stages.cond_stage, device);
      impl->cond_stage = cond.model;
      impl->cond_channels = cond.config.get<int64_t>("model.in_channels", 1);
    }
    return impl;
  });
  // The first stage opens through the public path (its own errors and description).
  OpenOptions stage1_options = options;
  stage1_options.use_ema = true;
  impl->stage1 = Model::open(impl->stages.stage1, stage1_options);
  if (impl->stage1->info().codebook_size != impl->prior->num_codes())
    fail(ErrorCode::bad_input,
         fmt::format("[Prior::open] {}: the prior was trained on {} codes, its stage1 {} has {}",
                     run_dir, impl->prior->num_codes(), impl->stages.stage1,
                     impl->stage1->info().codebook_size));
  return Prior(impl);
}

std::string Prior::kind() const {
  return impl_->prior->kind();
}
int64_t Prior::num_classes() const {
  return impl_->prior->num_classes();
}
bool Prior::image_conditional() const {
  return impl_->prior->cond_num_codes() > 0;
}
std::vector<int64_t> Prior::grid() const {
  return impl_->prior->grid();
}
Model Prior::stage1() const {
  return *impl_->stage1;
}

torch::Tensor Prior::sample_indices(const SampleOptions& o) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const char* where = "Prior::sample";
  auto& prior = *impl_->prior;
  if (o.n < 1 || o.n > 100000)
    fail(ErrorCode::invalid_argument,
         fmt::format("[{}] n: expected 1..100000, got {}", where, o.n));
  if (o.grid_h < 0 || o.grid_w < 0 || o.grid_h > 1024 || o.grid_w > 1024 ||
      (o.grid_h == 0) != (o.grid_w == 0))
    fail(ErrorCode::invalid_argument,
         fmt::format("[{}] grid: expected both 0 (the training grid) or both in 1..1024, got {}x{}",
                     where, o.grid_h, o.grid_w));
  lf::PriorCondition cond;
  if (prior.num_classes() > 0) {
    if (o.class_label < -1 || o.class_label >= prior.num_classes())
      fail(ErrorCode::invalid_argument,
           fmt::format("[{}] class_label: expected -1 (all) or 0..{}, got {}", where,
                       prior.num_classes() - 1, o.class_label));
    cond.labels = o.class_label < 0
                      ? torch::arange(o.n, torch::kInt64).remainder(prior.num_classes())
                      : torch::full({o.n}, o.class_label, torch::kInt64);
  } else if (o.class_label >= 0) {
    fail(ErrorCode::unsupported,
         fmt::format("[{}] class_label {}: this prior is not class-conditional", where,
                     o.class_label));
  }
  int64_t h = o.grid_h > 0 ? o.grid_h : prior.grid()[0];
  int64_t w = o.grid_w > 0 ? o.grid_w : prior.grid()[1];
  if (prior.cond_num_codes() > 0) {
    const auto& x = o.condition;
    if (!x.defined())
      fail(ErrorCode::invalid_argument,
           fmt::format("[{}] this prior is image-conditional: set condition to the {} images",
                       where, impl_->stages.cond_transform));
    if (x.dim() != 4 || x.size(0) < 1 || x.size(1) != impl_->cond_channels ||
        !x.is_floating_point())
      fail(ErrorCode::shape, fmt::format("[{}] condition: expected floats [M, {}, H, W], got {}",
                                         where, impl_->cond_channels, lf::shape_str(x.sizes())));
    guarded(where, [&] {
      torch::NoGradGuard no_grad;
      const auto codes =
          impl_->cond_stage->encode(x.to(impl_->device, torch::kFloat32)).at("indices");
      const auto which = torch::arange(o.n, torch::kInt64).remainder(codes.size(0));
      cond.cond_codes = codes.index_select(0, which.to(impl_->device));
    });
    if (o.grid_h == 0) {
      h = cond.cond_codes.size(1);
      w = cond.cond_codes.size(2);
    }
  } else if (o.condition.defined()) {
    fail(ErrorCode::unsupported,
         fmt::format("[{}] condition: this prior is not image-conditional", where));
  }
  lf::SamplingOptions sampling;
  sampling.temperature = o.temperature;
  sampling.top_k = o.top_k;
  sampling.top_p = o.top_p;
  try {
    sampling.validate(where);
  } catch (const lf::Error& e) {
    fail(ErrorCode::invalid_argument, e.what());
  }
  return guarded(where, [&] {
    torch::NoGradGuard no_grad;
    auto generator = lf::make_generator(o.seed);
    return to_host(prior.sample(o.n, h, w, cond, sampling, generator));
  });
}

torch::Tensor Prior::sample(const SampleOptions& options) {
  const auto codes = sample_indices(options);
  std::vector<torch::Tensor> images;
  for (int64_t begin = 0; begin < codes.size(0); begin += 256)
    images.push_back(impl_->stage1->decode_indices(codes.slice(0, begin, begin + 256)));
  return torch::cat(images);
}

}  // namespace latentforge
