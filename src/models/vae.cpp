// VAE: the seed's conv face VAE and a spatial-latent variant, with KL loss and interpolation.
#include "models/vae.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/transposed_conv_fold.h"

namespace lf {

torch::Tensor kl_divergence(const torch::Tensor& mean, const torch::Tensor& logvar) {
  if (!mean.defined() || !logvar.defined() || mean.dim() < 2 || mean.sizes() != logvar.sizes())
    fail("vae::kl_divergence", "expected mean and logvar of one shape [N, ...], got {} and {}",
         mean.defined() ? shape_str(mean.sizes()) : "undefined",
         logvar.defined() ? shape_str(logvar.sizes()) : "undefined");
  return (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp())).flatten(1).sum(1).mean();
}

void to_json(Json& json, const VAEOptions& o) {
  json = Json{{"variant", o.variant()},
              {"in_channels", o.in_channels()},
              {"image_size", o.image_size()},
              {"hidden", o.hidden()},
              {"latent_dim", o.latent_dim()},
              {"latent_channels", o.latent_channels()},
              {"num_res_blocks", o.num_res_blocks()},
              {"activation", o.activation()},
              {"kl_weight", o.kl_weight()},
              {"loss", o.loss()},
              {"output_activation", o.output_activation()}};
}

void from_json(const Json& json, VAEOptions& o) {
  OptionReader read(json, "vae options");
  read("variant", o.variant())("in_channels", o.in_channels())("image_size", o.image_size());
  read("hidden", o.hidden())("latent_dim", o.latent_dim())("latent_channels", o.latent_channels());
  read("num_res_blocks", o.num_res_blocks())("activation", o.activation());
  read("kl_weight", o.kl_weight())("loss", o.loss())("output_activation", o.output_activation());
  read.finish();
}

VAEOptions vae_preset(const std::string& name) {
  // The seed's face VAE exactly. The seed ends the decoder with a ReLU because its images are in
  // [0, 1]; ours are in [-1, 1], so no final activation (output_activation "relu" restores it).
  // Its kl_weight is kept; on [-1, 1] data the MSE is 4x larger, so KL weighs 4x less than there.
  if (name == "face64") return VAEOptions();
  // Fashion-MNIST 1x28x28: 28 -> 14 -> 7, flattened 64*7*7 -> 16. kl_weight 0.0025 with the mean
  // MSE over 784 pixels in [-1, 1] equals "summed MSE on [0, 1] + 0.49 KL": blurry but well-formed
  // garments from the prior, the usual trade-off of small VAEs.
  if (name == "fashion")
    return VAEOptions().in_channels(1).image_size(28).hidden({32, 64}).latent_dim(16).kl_weight(
        0.0025);
  fail("vae_preset", "unknown preset '{}' (known: {})", name, fmt::join(vae_preset_names(), ", "));
}

std::vector<std::string> vae_preset_names() {
  return {"face64", "fashion"};
}

SeedUpBlockImpl::SeedUpBlockImpl(int64_t in_channels, int64_t out_channels,
                                 int64_t image_channels) {
  up = register_module("0", torch::nn::ConvTranspose2d(
                                torch::nn::ConvTranspose2dOptions(in_channels, out_channels, 3)
                                    .stride(2)
                                    .padding(1)
                                    .output_padding(1)));
  norm = register_module("1", torch::nn::BatchNorm2d(out_channels));
  // "2" is the ReLU in the seed's nn.Sequential.
  if (image_channels > 0)
    conv_out = register_module(
        "3",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(out_channels, image_channels, 3).padding(1)));
}

// x: [N, in, h, w] -> [N, out, 2h, 2w] (or [N, image_channels, 2h, 2w] for the last stage)
torch::Tensor SeedUpBlockImpl::forward(torch::Tensor x) {
  x = torch::relu(norm(conv_transpose_forward(*up, x)));
  return conv_out ? conv_out(x) : x;
}

VAEImpl::VAEImpl(VAEOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_hidden(o.hidden(), "vae");
  check_choice(o.variant(), {"conv", "spatial"}, "vae", "variant");
  check_choice(o.loss(), {"l2", "l1"}, "vae", "loss");
  check_choice(o.activation(), {"relu", "silu"}, "vae", "activation");
  check_choice(o.output_activation(), {"none", "relu", "tanh"}, "vae", "output_activation");
  if (o.in_channels() <= 0 || o.latent_dim() <= 0 || o.latent_channels() <= 0 ||
      o.num_res_blocks() < 0 || o.kl_weight() < 0)
    fail("vae",
         "expected positive in_channels, latent_dim, latent_channels and non-negative "
         "num_res_blocks, kl_weight, got {}, {}, {}, {}, {}",
         o.in_channels(), o.latent_dim(), o.latent_channels(), o.num_res_blocks(), o.kl_weight());
  if (o.image_size() <= 0 || o.image_size() % factor() != 0)
    fail("vae", "image_size: expected a positive multiple of {} (2^{} stride-2 stages), got {}",
         factor(), o.hidden().size(), o.image_size());

  const auto& hidden = o.hidden();
  if (spatial()) {
    const bool silu = o.activation() == "silu";
    spatial_encoder = register_module(
        "encoder",
        ConvEncoder(o.in_channels(), hidden, o.num_res_blocks(), 2 * o.latent_channels(), silu));
    spatial_decoder = register_module(
        "decoder",
        ConvDecoder(o.latent_channels(), hidden, o.num_res_blocks(), o.in_channels(), silu));
    return;
  }
  // The seed: stride-2 Conv(3x3)+BN+ReLU per hidden size, flattened to two linear heads.
  encoder = register_module("encoder", torch::nn::ModuleList());
  int64_t prev = o.in_channels();
  for (int64_t h : hidden) {
    encoder_blocks_.push_back(torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(prev, h, 3).stride(2).padding(1)),
        torch::nn::BatchNorm2d(h), torch::nn::ReLU()));
    encoder->push_back(encoder_blocks_.back());
    prev = h;
  }
  const int64_t side = o.image_size() / factor();
  const int64_t flat = prev * side * side;
  mean_linear = register_module("mean_linear", torch::nn::Linear(flat, o.latent_dim()));
  var_linear = register_module("var_linear", torch::nn::Linear(flat, o.latent_dim()));
  decoder_projection =
      register_module("decoder_projection", torch::nn::Linear(o.latent_dim(), flat));
  decoder = register_module("decoder", torch::nn::ModuleList());
  const int64_t n = static_cast<int64_t>(hidden.size());
  for (int64_t i = n - 1; i > 0; --i) decoder_blocks_.emplace_back(hidden[i], hidden[i - 1], 0);
  decoder_blocks_.emplace_back(hidden[0], hidden[0], o.in_channels());
  for (auto& block : decoder_blocks_) decoder->push_back(block);
}

std::vector<int64_t> VAEImpl::latent_shape() const {
  if (spatial()) {
    const int64_t side = options_.image_size() / factor();
    return {options_.latent_channels(), side, side};
  }
  return {options_.latent_dim()};
}

// x: [N, C, H, W] -> mean, logvar: [N, D] (conv) or [N, z, H/f, W/f] (spatial)
std::pair<torch::Tensor, torch::Tensor> VAEImpl::encode_stats(const torch::Tensor& x,
                                                              const char* where) {
  check_image(x, options_.in_channels(), factor(), where);
  if (spatial()) {
    auto stats = spatial_encoder(x).chunk(2, 1);
    return {stats[0], stats[1].clamp(-30.0, 20.0)};  // as SD's DiagonalGaussianDistribution
  }
  const int64_t s = options_.image_size();
  if (x.size(2) != s || x.size(3) != s)
    fail(where, "the conv VAE takes {}x{} images only (its linear heads fix the size), got {}", s,
         s, shape_str(x.sizes()));
  auto h = x;
  for (auto& block : encoder_blocks_) h = block->forward(h);
  h = h.flatten(1);  // [N, C_last * s/f * s/f]
  return {mean_linear(h), var_linear(h)};
}

// z: [N, D] or [N, z, h, w] -> [N, C, H, W]
torch::Tensor VAEImpl::decode_latents(const torch::Tensor& z) {
  torch::Tensor x;
  if (spatial()) {
    check_image(z, options_.latent_channels(), 1, "vae::decode");
    x = spatial_decoder(z);
  } else {
    if (z.dim() != 2 || z.size(1) != options_.latent_dim())
      fail("vae::decode", "expected latents [N, {}], got {}", options_.latent_dim(),
           shape_str(z.sizes()));
    const int64_t side = options_.image_size() / factor();
    x = decoder_projection(z).view({z.size(0), options_.hidden().back(), side, side});
    for (auto& block : decoder_blocks_) x = block(x);
  }
  return output_activation(x, options_.output_activation());
}

TrainOutput VAEImpl::train_step(const torch::Tensor& x) {
  auto [mean, logvar] = encode_stats(x, "vae::train_step");
  const auto z = mean + torch::exp(logvar / 2) * torch::randn_like(logvar);  // reparameterisation
  TrainOutput out;
  out.reconstruction = decode_latents(z);
  const auto loss_rec = reconstruction_loss(out.reconstruction, x, options_.loss());
  const auto loss_kl = kl_divergence(mean, logvar);
  out.loss = loss_rec + options_.kl_weight() * loss_kl;
  out.logs = {{"loss_rec", loss_rec.item<double>()},
              {"loss_kl", loss_kl.item<double>()},
              {"loss", out.loss.item<double>()}};
  return out;
}

TensorMap VAEImpl::encode(const torch::Tensor& x) {
  auto [mean, logvar] = encode_stats(x, "vae::encode");
  return {{"mean", mean}, {"logvar", logvar}, {"latents", mean}};
}

torch::Tensor VAEImpl::decode(const TensorMap& code) {
  auto it = code.find("latents");
  if (it == code.end()) it = code.find("mean");
  if (it == code.end()) fail("vae::decode", "expected a \"latents\" or \"mean\" entry");
  return decode_latents(it->second);
}

torch::Tensor VAEImpl::sample(int64_t n) {
  if (n <= 0) fail("vae::sample", "expected a positive number of images, got {}", n);
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = latent_shape();
  shape.insert(shape.begin(), n);
  const auto options = parameters().front().options();  // the module's device and dtype
  return decode_latents(torch::randn(shape, options));
}

torch::Tensor VAEImpl::interpolate(const torch::Tensor& x_a, const torch::Tensor& x_b,
                                   int64_t steps) {
  if (!x_a.defined() || !x_b.defined() || x_a.dim() != 4 || x_a.size(0) != 1 ||
      x_a.sizes() != x_b.sizes())
    fail("vae::interpolate", "expected two images [1, C, H, W] of one shape, got {} and {}",
         x_a.defined() ? shape_str(x_a.sizes()) : "undefined",
         x_b.defined() ? shape_str(x_b.sizes()) : "undefined");
  if (steps < 2) fail("vae::interpolate", "expected steps >= 2, got {}", steps);
  torch::NoGradGuard no_grad;
  const auto mean = encode_stats(torch::cat({x_a, x_b}), "vae::interpolate").first;  // [2, ...]
  std::vector<int64_t> t_shape(mean.dim(), 1);
  t_shape[0] = steps;
  const auto t = torch::linspace(0.0, 1.0, steps, mean.options()).view(t_shape);  // [steps, 1, ...]
  return decode_latents(mean.slice(0, 0, 1) * (1 - t) + mean.slice(0, 1, 2) * t);
}

Json VAEImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
