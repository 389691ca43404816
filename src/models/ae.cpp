// AE and the conv building blocks shared with VAE and VQ-VAE.
#include "models/ae.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/transposed_conv_fold.h"

namespace lf {
namespace {

torch::Tensor act(const torch::Tensor& x, bool silu) {
  return silu ? torch::silu(x) : torch::relu(x);
}

}  // namespace

// ---- Building blocks ----------------------------------------------------------------------------

ResidualBlockImpl::ResidualBlockImpl(int64_t channels, bool silu) : silu_(silu) {
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
  conv2 =
      register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 1)));
}

// x: [N, C, H, W] -> [N, C, H, W]
torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  return x + conv2(act(conv1(act(x, silu_)), silu_));
}

ConvEncoderImpl::ConvEncoderImpl(int64_t in_channels, const std::vector<int64_t>& hidden,
                                 int64_t num_res_blocks, int64_t out_channels, bool silu)
    : silu_(silu) {
  down = register_module("down", torch::nn::ModuleList());
  res = register_module("res", torch::nn::ModuleList());
  int64_t prev = in_channels;
  for (int64_t h : hidden) {
    down_convs_.emplace_back(torch::nn::Conv2dOptions(prev, h, 4).stride(2).padding(1));
    down->push_back(down_convs_.back());
    prev = h;
  }
  for (int64_t i = 0; i < num_res_blocks; ++i) {
    res_blocks_.emplace_back(prev, silu);
    res->push_back(res_blocks_.back());
  }
  conv_out = register_module("conv_out",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(prev, out_channels, 1)));
}

// x: [N, in, H, W] -> [N, out, H/f, W/f]
torch::Tensor ConvEncoderImpl::forward(torch::Tensor x) {
  for (auto& conv : down_convs_) x = act(conv(x), silu_);
  for (auto& block : res_blocks_) x = block(x);
  if (!res_blocks_.empty()) x = act(x, silu_);
  return conv_out(x);
}

ConvDecoderImpl::ConvDecoderImpl(int64_t in_channels, const std::vector<int64_t>& hidden,
                                 int64_t num_res_blocks, int64_t out_channels, bool silu)
    : silu_(silu) {
  const int64_t n = static_cast<int64_t>(hidden.size());
  conv_in = register_module(
      "conv_in",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden.back(), 3).padding(1)));
  res = register_module("res", torch::nn::ModuleList());
  up = register_module("up", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_res_blocks; ++i) {
    res_blocks_.emplace_back(hidden.back(), silu);
    res->push_back(res_blocks_.back());
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t out = hidden[std::max<int64_t>(i - 1, 0)];
    up_convs_.emplace_back(
        torch::nn::ConvTranspose2dOptions(hidden[i], out, 4).stride(2).padding(1));
    up->push_back(up_convs_.back());
  }
  conv_out = register_module(
      "conv_out",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden.front(), out_channels, 3).padding(1)));
}

// z: [N, in, h, w] -> [N, out, h*f, w*f]
torch::Tensor ConvDecoderImpl::forward(torch::Tensor z) {
  z = conv_in(z);
  for (auto& block : res_blocks_) z = block(z);
  z = act(z, silu_);
  for (auto& conv : up_convs_) z = act(conv_transpose_forward(*conv, z), silu_);
  return conv_out(z);
}

// ---- Helpers ------------------------------------------------------------------------------------

void check_image(const torch::Tensor& x, int64_t channels, int64_t factor, const char* where) {
  if (!x.defined() || x.dim() != 4 || x.size(1) != channels || x.size(0) == 0 || x.size(2) == 0 ||
      x.size(3) == 0 || x.size(2) % factor != 0 || x.size(3) % factor != 0)
    fail(where, "expected [N, {}, H, W] with H and W divisible by {}, got {}", channels, factor,
         x.defined() ? shape_str(x.sizes()) : std::string("an undefined tensor"));
}

torch::Tensor reconstruction_loss(const torch::Tensor& x_rec, const torch::Tensor& x,
                                  const std::string& loss) {
  if (loss == "l1") return torch::l1_loss(x_rec, x);
  return torch::mse_loss(x_rec, x);
}

torch::Tensor output_activation(const torch::Tensor& x, const std::string& name) {
  if (name == "tanh") return torch::tanh(x);
  if (name == "relu") return torch::relu(x);
  return x;
}

void check_hidden(const std::vector<int64_t>& hidden, const char* where) {
  if (hidden.empty()) fail(where, "hidden: expected at least one channel count, got []");
  for (int64_t h : hidden)
    if (h <= 0) fail(where, "hidden: expected positive channel counts, got {}", shape_str(hidden));
}

// ---- AE -----------------------------------------------------------------------------------------

void to_json(Json& json, const AEOptions& o) {
  json = Json{{"in_channels", o.in_channels()},
              {"hidden", o.hidden()},
              {"num_res_blocks", o.num_res_blocks()},
              {"latent_channels", o.latent_channels()},
              {"loss", o.loss()},
              {"activation", o.activation()},
              {"output_activation", o.output_activation()}};
}

void from_json(const Json& json, AEOptions& o) {
  OptionReader read(json, "ae options");
  read("in_channels", o.in_channels())("hidden", o.hidden())("num_res_blocks", o.num_res_blocks());
  read("latent_channels", o.latent_channels())("loss", o.loss())("activation", o.activation());
  read("output_activation", o.output_activation());
  read.finish();
}

AEOptions ae_preset(const std::string& name) {
  if (name == "fashion") return AEOptions();  // 1x28x28 -> 4x7x7 (196 values, 4x fewer)
  if (name == "face64")                       // 3x64x64 -> 8x8x8 (512 values, 24x fewer)
    return AEOptions().in_channels(3).hidden({32, 64, 128}).latent_channels(8);
  fail("ae_preset", "unknown preset '{}' (known: {})", name, fmt::join(ae_preset_names(), ", "));
}

std::vector<std::string> ae_preset_names() {
  return {"fashion", "face64"};
}

AEImpl::AEImpl(AEOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_hidden(o.hidden(), "ae");
  check_choice(o.loss(), {"l2", "l1"}, "ae", "loss");
  check_choice(o.activation(), {"relu", "silu"}, "ae", "activation");
  check_choice(o.output_activation(), {"none", "tanh", "relu"}, "ae", "output_activation");
  if (o.in_channels() <= 0 || o.latent_channels() <= 0 || o.num_res_blocks() < 0)
    fail("ae", "expected in_channels > 0, latent_channels > 0, num_res_blocks >= 0, got {}, {}, {}",
         o.in_channels(), o.latent_channels(), o.num_res_blocks());
  const bool silu = o.activation() == "silu";
  encoder = register_module("encoder", ConvEncoder(o.in_channels(), o.hidden(), o.num_res_blocks(),
                                                   o.latent_channels(), silu));
  decoder = register_module("decoder", ConvDecoder(o.latent_channels(), o.hidden(),
                                                   o.num_res_blocks(), o.in_channels(), silu));
}

TrainOutput AEImpl::train_step(const torch::Tensor& x) {
  check_image(x, options_.in_channels(), factor(), "ae::train_step");
  TrainOutput out;
  out.reconstruction = output_activation(decoder(encoder(x)), options_.output_activation());
  out.loss = reconstruction_loss(out.reconstruction, x, options_.loss());
  const double loss = out.loss.item<double>();
  out.logs = {{"loss_rec", loss}, {"loss", loss}};
  return out;
}

// x: [N, C, H, W] -> {"latents": [N, latent, H/f, W/f]}
TensorMap AEImpl::encode(const torch::Tensor& x) {
  check_image(x, options_.in_channels(), factor(), "ae::encode");
  return {{"latents", encoder(x)}};
}

// "latents" [N, latent, h, w] -> [N, C, h*f, w*f]
torch::Tensor AEImpl::decode(const TensorMap& code) {
  const auto it = code.find("latents");
  if (it == code.end())
    fail("ae::decode", "expected a \"latents\" entry [N, {}, h, w]", options_.latent_channels());
  check_image(it->second, options_.latent_channels(), 1, "ae::decode");
  return output_activation(decoder(it->second), options_.output_activation());
}

Json AEImpl::options_json() const {
  return Json(options_);
}

}  // namespace lf
