// The KL autoencoder: see autoencoder_kl.h.
#include "models/autoencoder_kl.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/ae.h"

namespace lf {

void to_json(Json& json, const AutoencoderKLOptions& o) {
  json = Json{{"ddconfig", o.ddconfig()},
              {"embed_dim", o.embed_dim()},
              {"scale_factor", o.scale_factor()},
              {"loss", optional_loss_to_json(o.loss())}};
}

void from_json(const Json& json, AutoencoderKLOptions& o) {
  OptionReader read(json, "autoencoder_kl options");
  read("embed_dim", o.embed_dim())("scale_factor", o.scale_factor());
  if (const Json* dd = read.take("ddconfig")) from_json(*dd, o.ddconfig());
  if (const Json* loss = read.take("loss")) optional_loss_from_json(*loss, "kl", o.loss());
  read.finish();
}

AutoencoderKLOptions autoencoder_kl_preset(const std::string& name) {
  if (name == "sd_v1") return AutoencoderKLOptions().scale_factor(0.18215);
  if (name == "fashion32") {
    AutoencoderKLOptions o;
    o.ddconfig(LdmCoderOptions()
                   .ch(32)
                   .ch_mult({1, 2, 2})
                   .num_res_blocks(1)
                   .attn_resolutions({})
                   .resolution(32)
                   .in_channels(1)
                   .out_ch(1)
                   .z_channels(4));
    o.embed_dim(4);
    o.loss()->disc_in_channels(1).disc_ndf(32).disc_start(500).kl_weight(1e-6);
    return o;
  }
  fail("autoencoder_kl_preset", "unknown preset '{}' (known: {})", name,
       fmt::join(autoencoder_kl_preset_names(), ", "));
}

std::vector<std::string> autoencoder_kl_preset_names() {
  return {"sd_v1", "fashion32"};
}

AutoencoderKLImpl::AutoencoderKLImpl(AutoencoderKLOptions options)
    : LdmAutoencoderImpl(options.ddconfig(), 2 * options.embed_dim(), options.embed_dim(),
                         options.loss()),
      options_(std::move(options)) {
  if (!options_.ddconfig().double_z())
    fail("autoencoder_kl",
         "ddconfig.double_z: expected true (the encoder emits mean and "
         "log-variance), got false");
  if (!(options_.scale_factor() > 0))
    fail("autoencoder_kl", "scale_factor: expected > 0, got {}", options_.scale_factor());
}

DiagonalGaussian AutoencoderKLImpl::posterior(const torch::Tensor& x) {
  return DiagonalGaussian(encode_moments(x));
}

TrainOutput AutoencoderKLImpl::train_step(const torch::Tensor& x) {
  check_training_image(x);
  auto& objective = training_loss();
  const DiagonalGaussian q = posterior(x);
  TrainOutput out;
  out.reconstruction = decode_latents(q.sample());
  LossOutput l = objective->generator_loss(x, out.reconstruction, q.kl(), step_, last_layer());
  out.loss = l.loss;
  out.logs = std::move(l.logs);
  out.logs["posterior_std"] = q.std.mean().item<double>();
  return out;
}

TensorMap AutoencoderKLImpl::encode(const torch::Tensor& x) {
  const DiagonalGaussian q = posterior(x);
  return {{"mean", q.mean}, {"logvar", q.logvar}, {"latents", q.mean * options_.scale_factor()}};
}

torch::Tensor AutoencoderKLImpl::decode(const TensorMap& code) {
  if (const auto it = code.find("latents"); it != code.end())
    return decode_latents(it->second / options_.scale_factor());
  if (const auto it = code.find("mean"); it != code.end()) return decode_latents(it->second);
  fail("autoencoder_kl::decode",
       "expected a \"latents\" (scaled by {}) or \"mean\" [N, {}, h, w] entry",
       options_.scale_factor(), options_.embed_dim());
}

Json AutoencoderKLImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
