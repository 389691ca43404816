// Shared VQGAN / KL autoencoder parts: see ldm_autoencoder.h.
#include "models/ldm_autoencoder.h"

#include <utility>

#include "core/error.h"
#include "models/ae.h"

namespace lf {
namespace nn = torch::nn;
namespace F = torch::nn::functional;

Json optional_loss_to_json(const std::optional<AutoencoderGANLossOptions>& loss) {
  return loss ? Json(*loss) : Json(nullptr);
}

void optional_loss_from_json(const Json& json, const std::string& kind,
                             std::optional<AutoencoderGANLossOptions>& loss) {
  if (json.is_null()) {
    loss.reset();
    return;
  }
  auto options = loss.value_or(AutoencoderGANLossOptions().kind(kind));
  from_json(json, options);
  loss = options;
}

LdmAutoencoderImpl::LdmAutoencoderImpl(const LdmCoderOptions& ddconfig, int64_t moment_channels,
                                       int64_t latent_channels,
                                       const std::optional<AutoencoderGANLossOptions>& loss_options)
    : ddconfig_(ddconfig) {
  if (moment_channels <= 0 || latent_channels <= 0)
    fail("ldm autoencoder", "embed_dim: expected a positive channel count, got {}",
         latent_channels);
  encoder = register_module("encoder", LdmEncoder(ddconfig));
  decoder = register_module("decoder", LdmDecoder(ddconfig));
  const int64_t z_out = ddconfig.double_z() ? 2 * ddconfig.z_channels() : ddconfig.z_channels();
  quant_conv =
      register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(z_out, moment_channels, 1)));
  post_quant_conv = register_module(
      "post_quant_conv", nn::Conv2d(nn::Conv2dOptions(latent_channels, ddconfig.z_channels(), 1)));
  if (loss_options) loss = register_module("loss", AutoencoderGANLoss(*loss_options));
}

torch::Tensor pad_to_factor(const torch::Tensor& x, int64_t f) {
  const int64_t pad_h = (f - x.size(2) % f) % f, pad_w = (f - x.size(3) % f) % f;
  if (pad_h == 0 && pad_w == 0) return x;
  auto options = F::PadFuncOptions({0, pad_w, 0, pad_h});
  if (pad_h < x.size(2) && pad_w < x.size(3))
    options.mode(torch::kReflect);
  else
    options.mode(torch::kReplicate);
  return F::pad(x, options);
}

torch::Tensor LdmAutoencoderImpl::encode_moments(const torch::Tensor& x) {
  check_image(x, ddconfig_.in_channels(), 1, (kind() + "::encode").c_str());
  const auto padded = pad_to_factor(x, factor());
  if (!tiling_.enabled()) {
    const auto streaming = choose_streaming(
        "encode",
        [&](const StreamingOptions& o) {
          return estimate_encode_memory(*encoder, padded.sizes(), o);
        },
        encode_needs_float32_storage());
    if (streaming) return quant_conv(streamed_encode(*encoder, padded, *streaming));
  }
  const auto run = [this](const torch::Tensor& tile) { return quant_conv(encoder(tile)); };
  return tiled_apply(run, padded, tiling_, 1, factor());
}

torch::Tensor LdmAutoencoderImpl::reconstruct(const torch::Tensor& x) {
  return decode(encode(x)).narrow(2, 0, x.size(2)).narrow(3, 0, x.size(3));
}

torch::Tensor LdmAutoencoderImpl::decode_latents(const torch::Tensor& z) {
  check_image(z, post_quant_conv->options.in_channels(), 1, (kind() + "::decode").c_str());
  if (!tiling_.enabled()) {
    const auto streaming = choose_streaming("decode", [&](const StreamingOptions& o) {
      return estimate_decode_memory(*decoder,
                                    {z.size(0), ddconfig_.z_channels(), z.size(2), z.size(3)}, o);
    });
    if (streaming) return streamed_decode(*decoder, post_quant_conv(z), *streaming);
  }
  const auto run = [this](const torch::Tensor& tile) { return decoder(post_quant_conv(tile)); };
  TileOptions latent_tiling;
  if (tiling_.enabled()) {  // the same tiles as in image space
    latent_tiling.tile = std::max<int64_t>(1, tiling_.tile / factor());
    latent_tiling.overlap = tiling_.overlap / factor();
  }
  return tiled_apply(run, z, latent_tiling, factor(), 1);
}

void LdmAutoencoderImpl::set_tiling(const TileOptions& options) {
  if (options.enabled() && (options.tile % factor() != 0 || options.overlap < 0 ||
                            options.overlap >= options.tile || options.overlap % factor() != 0))
    fail("tiling",
         "expected a tile side and an overlap that are multiples of the downsampling factor {}, "
         "with 0 <= overlap < tile, got tile {}, overlap {}",
         factor(), options.tile, options.overlap);
  tiling_ = options;
}

void LdmAutoencoderImpl::set_memory_plan(const MemoryPlan& plan) {
  if (plan.max_bytes() < 0 || plan.streaming().band_bytes() <= 0)
    fail("memory plan", "expected max_bytes >= 0 and band_bytes > 0, got {} and {}",
         plan.max_bytes(), plan.streaming().band_bytes());
  plan_ = plan;
}

std::vector<std::string> LdmAutoencoderImpl::take_plan_notes() {
  return std::exchange(plan_notes_, {});
}

std::optional<StreamingOptions> LdmAutoencoderImpl::choose_streaming(
    const char* what, const std::function<CoderMemory(const StreamingOptions&)>& estimate,
    bool float32_only) {
  if (torch::GradMode::is_enabled()) return std::nullopt;  // training: the modules' own forward
  const char* why_float32 =
      "float32 storage: float16 maps before the quantizer would change near-tie codes";
  if (plan_.stream()) {
    auto options = plan_.streaming();
    if (float32_only && options.half_storage()) {
      options.half_storage(false);
      plan_notes_.push_back(fmt::format("{}: {}", what, why_float32));
    }
    return options;
  }
  const int64_t bound = plan_.max_bytes();
  if (bound <= 0) return std::nullopt;
  auto options = plan_.streaming();
  if (float32_only) options.half_storage(false);
  // Bands of 1/32 of the bound: the measured peaks (docs/results.md) used 32 MiB bands.
  options.band_bytes(std::min(options.band_bytes(), std::max<int64_t>(bound / 32, 1 << 20)));
  const CoderMemory m = estimate(options);
  if (m.untiled <= bound) return std::nullopt;
  // Cheapest first: float32 maps; float16 maps (about 80 dB); the full-resolution level
  // recomputed rather than stored (more compute, exact to the storage of the rest). Without
  // float16: float32 maps, then the full-resolution level recomputed.
  int64_t need = m.streamed;
  if (need > bound && !float32_only) {
    options.half_storage(true);
    need = m.streamed_half;
  }
  if (need > bound) {
    options.recompute_full_resolution(true);
    need = float32_only ? m.streamed_recompute_f32 : m.streamed_recompute;
  }
  const auto gb = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); };
  plan_notes_.push_back(fmt::format(
      "{}: streamed in row bands{}{}{} (exact; about {:.2f} GiB of activations, untiled would "
      "need about {:.2f} GiB, the bound is {:.2f} GiB)",
      what, options.half_storage() ? " with float16 storage" : "",
      float32_only ? std::string(" with ") + why_float32 : std::string(),
      options.recompute_full_resolution() ? ", full-resolution level recomputed" : "", gb(need),
      gb(m.untiled), gb(bound)));
  return options;
}

void LdmAutoencoderImpl::check_training_image(const torch::Tensor& x) {
  check_image(x, ddconfig_.in_channels(), factor(), (kind() + "::train_step").c_str());
}

std::vector<torch::Tensor> LdmAutoencoderImpl::discriminator_parameters() {
  return loss ? loss->discriminator_parameters() : std::vector<torch::Tensor>{};
}

bool LdmAutoencoderImpl::discriminator_active(int64_t step) const {
  return loss && loss->discriminator_active(step);
}

TrainOutput LdmAutoencoderImpl::discriminator_step(const torch::Tensor& x,
                                                   const torch::Tensor& reconstruction) {
  const LossOutput d = training_loss()->discriminator_loss(x, reconstruction.detach(), step_);
  TrainOutput out;
  out.loss = d.loss;
  out.logs = d.logs;
  return out;
}

AutoencoderGANLoss& LdmAutoencoderImpl::training_loss() {
  if (!loss)
    fail((kind() + "::train_step").c_str(),
         "this model was built without a training loss (loss: null, as for imported inference "
         "weights); give the model config a 'loss' section to train it");
  return loss;
}

}  // namespace lf
