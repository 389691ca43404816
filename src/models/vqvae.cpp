// VQ-VAE: encoder, vector quantizer and decoder, with codebook statistics in every step's logs.
#include "models/vqvae.h"

#include <fmt/ranges.h>

#include "core/error.h"

namespace lf {

Json quantizer_options_to_json(const VectorQuantizerOptions& o) {
  return Json{{"num_codes", o.num_codes()},
              {"code_dim", o.code_dim()},
              {"beta", o.beta()},
              {"legacy_beta", o.legacy_beta()},
              {"use_ema", o.use_ema()},
              {"ema_decay", o.ema_decay()},
              {"ema_epsilon", o.ema_epsilon()},
              {"kmeans_init", o.kmeans_init()},
              {"kmeans_iters", o.kmeans_iters()},
              {"dead_code_restart", o.dead_code_restart()},
              {"dead_code_threshold", o.dead_code_threshold()},
              {"usage_decay", o.usage_decay()},
              {"l2_normalize", o.l2_normalize()},
              {"lookup_dim", o.lookup_dim()},
              {"chunk_size", o.chunk_size()}};
}

void quantizer_options_from_json(const Json& json, VectorQuantizerOptions& o) {
  OptionReader read(json, "quantizer options");
  read("num_codes", o.num_codes())("code_dim", o.code_dim())("beta", o.beta());
  read("legacy_beta", o.legacy_beta())("use_ema", o.use_ema())("ema_decay", o.ema_decay());
  read("ema_epsilon", o.ema_epsilon())("kmeans_init", o.kmeans_init())("kmeans_iters",
                                                                       o.kmeans_iters());
  read("dead_code_restart", o.dead_code_restart())("dead_code_threshold", o.dead_code_threshold());
  read("usage_decay", o.usage_decay())("l2_normalize", o.l2_normalize())("lookup_dim",
                                                                         o.lookup_dim());
  read("chunk_size", o.chunk_size());
  read.finish();
}

void to_json(Json& json, const VQVAEOptions& o) {
  json = Json{{"in_channels", o.in_channels()},
              {"hidden", o.hidden()},
              {"num_res_blocks", o.num_res_blocks()},
              {"activation", o.activation()},
              {"loss", o.loss()},
              {"output_activation", o.output_activation()},
              {"quantizer", quantizer_options_to_json(o.quantizer())},
              {"codebook_init_offset", o.codebook_init_offset()}};
}

void from_json(const Json& json, VQVAEOptions& o) {
  OptionReader read(json, "vqvae options");
  read("in_channels", o.in_channels())("hidden", o.hidden())("num_res_blocks", o.num_res_blocks());
  read("activation", o.activation())("loss", o.loss())("output_activation", o.output_activation());
  read("codebook_init_offset", o.codebook_init_offset());
  if (const Json* quantizer = read.take("quantizer"))
    quantizer_options_from_json(*quantizer, o.quantizer());
  read.finish();
}

VQVAEOptions vqvae_preset(const std::string& name) {
  // 28 -> 14 -> 7: 49 codes per image. k-means init and a prompt dead-code restart: after 300
  // Adam steps (lr 2e-3, batch 32) all 256 codes are used on 1000 test images, perplexity ~150.
  if (name == "fashion") return VQVAEOptions();
  // Every code starts offset * sqrt(D) away from the encoder outputs: the code with the smallest
  // norm wins every lookup and only it learns. Usage starts at 1/K and is ~4% (perplexity ~6)
  // after 150 steps; with dead_code_restart on it is ~98% (perplexity ~275).
  if (name == "fashion_collapse") {
    auto o = VQVAEOptions().codebook_init_offset(3.0);
    o.quantizer().num_codes(512).kmeans_init(false).dead_code_restart(false);
    return o;
  }
  fail("vqvae_preset", "unknown preset '{}' (known: {})", name,
       fmt::join(vqvae_preset_names(), ", "));
}

std::vector<std::string> vqvae_preset_names() {
  return {"fashion", "fashion_collapse"};
}

VQVAEImpl::VQVAEImpl(VQVAEOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_hidden(o.hidden(), "vqvae");
  check_choice(o.loss(), {"l2", "l1"}, "vqvae", "loss");
  check_choice(o.activation(), {"relu", "silu"}, "vqvae", "activation");
  check_choice(o.output_activation(), {"none", "tanh", "relu"}, "vqvae", "output_activation");
  const auto& q = o.quantizer();
  if (o.in_channels() <= 0 || o.num_res_blocks() < 0 || q.num_codes() <= 0 || q.code_dim() <= 0)
    fail("vqvae",
         "expected in_channels > 0, num_res_blocks >= 0, quantizer.num_codes > 0, "
         "quantizer.code_dim > 0, got {}, {}, {}, {}",
         o.in_channels(), o.num_res_blocks(), q.num_codes(), q.code_dim());
  const bool silu = o.activation() == "silu";
  encoder = register_module(
      "encoder", ConvEncoder(o.in_channels(), o.hidden(), o.num_res_blocks(), q.code_dim(), silu));
  quantize = register_module("quantize", VectorQuantizer(q));
  decoder = register_module(
      "decoder", ConvDecoder(q.code_dim(), o.hidden(), o.num_res_blocks(), o.in_channels(), silu));
  if (o.codebook_init_offset() != 0) {
    torch::NoGradGuard no_grad;
    quantize->embedding->weight.add_(o.codebook_init_offset());
  }
}

TrainOutput VQVAEImpl::train_step(const torch::Tensor& x) {
  check_image(x, options_.in_channels(), factor(), "vqvae::train_step");
  const auto z_e = encoder(x);  // [N, D, H/f, W/f]
  const QuantizerOutput q = quantize(z_e);
  TrainOutput out;
  out.reconstruction = output_activation(decoder(q.z_q), options_.output_activation());
  const auto loss_rec = reconstruction_loss(out.reconstruction, x, options_.loss());
  out.loss = loss_rec + q.loss;
  out.logs = q.logs();
  out.logs["loss_rec"] = loss_rec.item<double>();
  out.logs["loss"] = out.loss.item<double>();
  return out;
}

TensorMap VQVAEImpl::encode(const torch::Tensor& x) {
  check_image(x, options_.in_channels(), factor(), "vqvae::encode");
  const auto z_e = encoder(x);
  const QuantizerOutput q = quantize->forward_frozen(z_e);
  return {{"indices", q.indices}, {"latents", q.z_q}};
}

torch::Tensor VQVAEImpl::decode(const TensorMap& code) {
  const int64_t dim = options_.quantizer().code_dim();
  torch::Tensor z_q;
  if (const auto it = code.find("indices"); it != code.end()) {
    z_q = quantize->lookup(it->second);  // checks dtype, shape and range
  } else if (const auto jt = code.find("latents"); jt != code.end()) {
    check_image(jt->second, dim, 1, "vqvae::decode");
    z_q = jt->second;
  } else {
    fail("vqvae::decode", "expected an \"indices\" [N, h, w] or \"latents\" [N, {}, h, w] entry",
         dim);
  }
  return output_activation(decoder(z_q), options_.output_activation());
}

Json VQVAEImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
