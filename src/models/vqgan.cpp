// VQGAN: see vqgan.h.
#include "models/vqgan.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/ae.h"
#include "models/vqvae.h"

namespace lf {
void to_json(Json& json, const VQGANOptions& o) {
  Json quantizer = quantizer_options_to_json(o.quantizer());
  quantizer.erase("num_codes");  // n_embed and embed_dim are the authority
  quantizer.erase("code_dim");
  json = Json{{"ddconfig", o.ddconfig()},
              {"embed_dim", o.embed_dim()},
              {"n_embed", o.n_embed()},
              {"quantizer", quantizer},
              {"loss", optional_loss_to_json(o.loss())}};
}

void from_json(const Json& json, VQGANOptions& o) {
  OptionReader read(json, "vqgan options");
  read("embed_dim", o.embed_dim())("n_embed", o.n_embed());
  if (const Json* dd = read.take("ddconfig")) from_json(*dd, o.ddconfig());
  if (const Json* quantizer = read.take("quantizer")) {
    if (quantizer->contains("num_codes") || quantizer->contains("code_dim"))
      fail("vqgan options",
           "quantizer: set the codebook size and dimension with n_embed and "
           "embed_dim, not quantizer.num_codes / code_dim");
    quantizer_options_from_json(*quantizer, o.quantizer());
  }
  if (const Json* loss = read.take("loss")) optional_loss_from_json(*loss, "vq", o.loss());
  read.finish();
}

VQGANOptions vqgan_preset(const std::string& name) {
  if (name == "imagenet_f16_1024") return VQGANOptions();
  if (name == "fashion32") {
    VQGANOptions o;
    o.ddconfig(LdmCoderOptions()
                   .ch(32)
                   .ch_mult({1, 2, 2})
                   .num_res_blocks(1)
                   .attn_resolutions({8})
                   .resolution(32)
                   .in_channels(1)
                   .out_ch(1)
                   .z_channels(64)
                   .double_z(false));
    o.embed_dim(32).n_embed(256);
    // k-means init and prompt dead-code restart keep every code in use (see the VQ-VAE preset).
    o.quantizer().kmeans_init(true).dead_code_restart(true).usage_decay(0.9).dead_code_threshold(
        0.03);
    o.loss()->disc_in_channels(1).disc_ndf(32).disc_start(500);
    return o;
  }
  fail("vqgan_preset", "unknown preset '{}' (known: {})", name,
       fmt::join(vqgan_preset_names(), ", "));
}

std::vector<std::string> vqgan_preset_names() {
  return {"imagenet_f16_1024", "fashion32"};
}

VQGANImpl::VQGANImpl(VQGANOptions options)
    : LdmAutoencoderImpl(options.ddconfig(), options.embed_dim(), options.embed_dim(),
                         options.loss()),
      options_(std::move(options)) {
  if (options_.n_embed() <= 0)
    fail("vqgan", "n_embed: expected a positive codebook size, got {}", options_.n_embed());
  auto quantizer = options_.quantizer();
  quantizer.num_codes(options_.n_embed()).code_dim(options_.embed_dim());
  quantize = register_module("quantize", VectorQuantizer(quantizer));
}

TrainOutput VQGANImpl::train_step(const torch::Tensor& x) {
  check_training_image(x);
  auto& objective = training_loss();
  const QuantizerOutput q = quantize(encode_moments(x));
  TrainOutput out;
  out.reconstruction = decode_latents(q.z_q);
  LossOutput l = objective->generator_loss(x, out.reconstruction, q.loss, step_, last_layer());
  out.loss = l.loss;
  out.logs = std::move(l.logs);
  // The quantizer's own entries, named as for VQ-VAE (loss_codebook unweighted; loss_vq the
  // weighted term the GAN loss multiplies by codebook_weight).
  for (const auto& [key, value] : q.logs()) out.logs[key] = value;
  return out;
}

TensorMap VQGANImpl::encode(const torch::Tensor& x) {
  const auto h = encode_moments(x);
  const QuantizerOutput q = quantize->forward_frozen(h);
  return {{"indices", q.indices}, {"latents", q.z_q}};
}

torch::Tensor VQGANImpl::decode(const TensorMap& code) {
  if (const auto it = code.find("indices"); it != code.end())
    return decode_latents(quantize->lookup(it->second));  // checks dtype, shape and range
  if (const auto it = code.find("latents"); it != code.end()) return decode_latents(it->second);
  fail("vqgan::decode", "expected an \"indices\" [N, h, w] or \"latents\" [N, {}, h, w] entry",
       options_.embed_dim());
}

Json VQGANImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
