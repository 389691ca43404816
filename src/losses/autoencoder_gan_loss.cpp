// VQGAN's and the KL autoencoder's training loss, term for term as taming's
// VQLPIPSWithDiscriminator and ldm's LPIPSWithDiscriminator.
#include "losses/autoencoder_gan_loss.h"

#include "core/error.h"
#include "core/log.h"
#include "io/option_reader.h"
#include "losses/gan_loss.h"
#include "losses/lpips.h"

namespace lf {

void to_json(Json& json, const AutoencoderGANLossOptions& o) {
  json = Json{{"kind", o.kind()},
              {"disc_start", o.disc_start()},
              {"disc_weight", o.disc_weight()},
              {"disc_factor", o.disc_factor()},
              {"disc_loss", o.disc_loss()},
              {"disc_in_channels", o.disc_in_channels()},
              {"disc_num_layers", o.disc_num_layers()},
              {"disc_ndf", o.disc_ndf()},
              {"use_actnorm", o.use_actnorm()},
              {"pixel_weight", o.pixel_weight()},
              {"perceptual_weight", o.perceptual_weight()},
              {"perceptual_weights", o.perceptual_weights()},
              {"codebook_weight", o.codebook_weight()},
              {"kl_weight", o.kl_weight()},
              {"logvar_init", o.logvar_init()}};
}

void from_json(const Json& json, AutoencoderGANLossOptions& o) {
  OptionReader read(json, "autoencoder_gan_loss options");
  read("kind", o.kind())("disc_start", o.disc_start())("disc_weight", o.disc_weight());
  read("disc_factor", o.disc_factor())("disc_loss", o.disc_loss());
  read("disc_in_channels", o.disc_in_channels())("disc_num_layers", o.disc_num_layers());
  read("disc_ndf", o.disc_ndf())("use_actnorm", o.use_actnorm());
  read("pixel_weight", o.pixel_weight())("perceptual_weight", o.perceptual_weight());
  read("perceptual_weights", o.perceptual_weights())("codebook_weight", o.codebook_weight());
  read("kl_weight", o.kl_weight())("logvar_init", o.logvar_init());
  read.finish();
}

struct AutoencoderGANLossImpl::Perceptual {
  LPIPS net;
};

AutoencoderGANLossImpl::AutoencoderGANLossImpl(AutoencoderGANLossOptions options)
    : options_(std::move(options)) {
  const auto& o = options_;
  check_choice(o.kind(), {"vq", "kl"}, "autoencoder_gan_loss", "kind");
  check_choice(o.disc_loss(), {"hinge", "vanilla"}, "autoencoder_gan_loss", "disc_loss");
  if (o.perceptual_weight() < 0)
    fail("autoencoder_gan_loss", "perceptual_weight: expected >= 0, got {}", o.perceptual_weight());
  discriminator_ =
      register_module("discriminator", PatchDiscriminator(PatchDiscriminatorOptions()
                                                              .input_nc(o.disc_in_channels())
                                                              .ndf(o.disc_ndf())
                                                              .n_layers(o.disc_num_layers())
                                                              .use_actnorm(o.use_actnorm())));
  if (o.kind() == "kl") logvar = register_parameter("logvar", torch::full({}, o.logvar_init()));

  // Why the term is off is said once, at the first training step, not here: a model loaded for
  // inference builds its loss too and should not warn about training.
  if (o.perceptual_weights().empty())
    perceptual_off_ = "no perceptual_weights file given: the LPIPS term is off";
  else if (o.perceptual_weight() == 0)
    perceptual_off_ = fmt::format("perceptual_weight is 0: the LPIPS term is off ({} unused)",
                                  o.perceptual_weights());
  else
    perceptual_ = std::make_shared<Perceptual>(Perceptual{LPIPS(o.perceptual_weights())});
}

bool AutoencoderGANLossImpl::has_perceptual() const {
  return perceptual_ != nullptr;
}

std::vector<torch::Tensor> AutoencoderGANLossImpl::discriminator_parameters() {
  return discriminator_->parameters();
}

torch::Tensor AutoencoderGANLossImpl::perceptual_distance(const torch::Tensor& x,
                                                          const torch::Tensor& y) {
  auto& net = perceptual_->net;
  const auto probe = net->parameters().front();  // a copy: parameters() is a temporary
  if (probe.device() != x.device() || probe.scalar_type() != x.scalar_type())
    net->to(x.device(), x.scalar_type());
  if (x.size(1) == 1)  // greyscale: LPIPS's VGG expects RGB
    return net->forward(x.expand({-1, 3, -1, -1}), y.expand({-1, 3, -1, -1}))
        .view({x.size(0), 1, 1, 1});
  return net->forward(x, y).view({x.size(0), 1, 1, 1});
}

torch::Tensor AutoencoderGANLossImpl::adversarial_loss(const torch::Tensor& x_rec) {
  if (!torch::GradMode::is_enabled() || !x_rec.requires_grad())
    return -discriminator_->forward(x_rec).mean();
  // Training needs d g_loss / d x_rec twice: for the adaptive weight (down to the last layer) and
  // in the generator's backward. Backpropagating through the discriminator once, here, and
  // handing its result G to x_rec's graph as the term sum(x_rec * G) (its value taken out again)
  // gives the same loss and the same gradients as -mean(D(x_rec)) with one discriminator pass
  // fewer. The discriminator's parameters get no gradient from this loss: the trainer freezes
  // them during the generator's step (the reference zeroes them before the discriminator's).
  const auto leaf = x_rec.detach().requires_grad_(true);
  const auto g_loss = -discriminator_->forward(leaf).mean();
  const auto g_grad = torch::autograd::grad({g_loss}, {leaf})[0];  // [N, C, H, W]
  const auto linear = (x_rec * g_grad).sum();
  return g_loss.detach() + (linear - linear.detach());
}

torch::Tensor AutoencoderGANLossImpl::adaptive_weight(const torch::Tensor& nll_loss,
                                                      const torch::Tensor& g_loss,
                                                      const torch::Tensor& last_layer) {
  try {
    return calculate_adaptive_weight(nll_loss, g_loss, last_layer, options_.disc_weight());
  } catch (const Error&) {
    if (is_training()) throw;  // taming asserts here: training needs the graph to last_layer
    return torch::zeros({}, nll_loss.options().requires_grad(false));
  }
}

LossOutput AutoencoderGANLossImpl::generator_loss(const torch::Tensor& x,
                                                  const torch::Tensor& x_rec,
                                                  const torch::Tensor& regulariser, int64_t step,
                                                  const torch::Tensor& last_layer) {
  const auto& o = options_;
  const bool kl = o.kind() == "kl";
  if (x.dim() != 4 || x.sizes() != x_rec.sizes())
    fail("autoencoder_gan_loss::generator_loss",
         "expected x and x_rec of the same shape [N, C, H, W], got {} and {}", shape_str(x.sizes()),
         shape_str(x_rec.sizes()));
  const int64_t n = x.size(0);
  if (!regulariser.defined() || (kl && (regulariser.dim() < 1 || regulariser.size(0) != n)))
    fail("autoencoder_gan_loss::generator_loss", "regulariser: expected {}, got {}",
         kl ? fmt::format("the per-sample KL [{}]", n) : "the codebook loss (scalar)",
         regulariser.defined() ? shape_str(regulariser.sizes()) : "undefined");

  if (!perceptual_off_.empty()) {
    spdlog::warn("autoencoder_gan_loss: {}", perceptual_off_);
    perceptual_off_.clear();  // once
  }
  auto rec = (x - x_rec).abs();  // [N, C, H, W]
  const double loss_l1 = rec.mean().item<double>();
  if (o.pixel_weight() != 1.0) rec = rec * o.pixel_weight();
  double loss_p = 0;
  if (perceptual_) {
    const auto p = perceptual_distance(x, x_rec);  // [N, 1, 1, 1]
    loss_p = p.mean().item<double>();
    rec = rec + o.perceptual_weight() * p;
  }

  const double disc_factor = adopt_weight(o.disc_factor(), step, o.disc_start());
  // Before disc_start (or with disc_factor 0) the adversarial term is multiplied by 0: skip the
  // discriminator pass and the two gradient evaluations of the adaptive weight altogether (the
  // reference computes and discards them; only the logged loss_g / d_weight differ: 0 here).
  const bool adversarial = disc_factor > 0;
  const auto zero = torch::zeros({}, x_rec.options().requires_grad(false));
  const auto g_loss = adversarial ? adversarial_loss(x_rec) : zero;
  LossOutput out;
  torch::Tensor nll_loss, d_weight = zero;
  if (!kl) {
    nll_loss = rec.mean();
    if (adversarial) d_weight = adaptive_weight(nll_loss, g_loss, last_layer);
    const auto loss_codebook = regulariser.mean();
    out.loss = nll_loss + d_weight * disc_factor * g_loss + o.codebook_weight() * loss_codebook;
    out.logs["loss_codebook"] = loss_codebook.item<double>();
  } else {
    // The learned log-variance turns L1 + LPIPS into a Laplace-like likelihood per pixel.
    nll_loss = (rec / torch::exp(logvar) + logvar).sum() / n;
    const auto loss_kl = regulariser.sum() / n;
    if (adversarial) d_weight = adaptive_weight(nll_loss, g_loss, last_layer);
    out.loss = nll_loss + o.kl_weight() * loss_kl + d_weight * disc_factor * g_loss;
    out.logs["loss_kl"] = loss_kl.item<double>();
    out.logs["logvar"] = logvar.item<double>();
  }
  out.logs["loss"] = out.loss.item<double>();
  out.logs["loss_rec"] = loss_l1;
  out.logs["loss_p"] = loss_p;
  out.logs["loss_nll"] = nll_loss.item<double>();
  out.logs["loss_g"] = g_loss.item<double>();
  out.logs["d_weight"] = d_weight.item<double>();
  out.logs["disc_factor"] = disc_factor;
  return out;
}

LossOutput AutoencoderGANLossImpl::discriminator_loss(const torch::Tensor& x,
                                                      const torch::Tensor& x_rec, int64_t step) {
  if (x.dim() != 4 || x.sizes() != x_rec.sizes())
    fail("autoencoder_gan_loss::discriminator_loss",
         "expected x and x_rec of the same shape [N, C, H, W], got {} and {}", shape_str(x.sizes()),
         shape_str(x_rec.sizes()));
  // Two passes, as the reference: BatchNorm sees real and fake batches separately.
  const auto logits_real = discriminator_->forward(x.detach());
  const auto logits_fake = discriminator_->forward(x_rec.detach());
  const double disc_factor = adopt_weight(options_.disc_factor(), step, options_.disc_start());
  LossOutput out;
  out.loss = disc_factor * lf::discriminator_loss(options_.disc_loss(), logits_real, logits_fake);
  out.logs = {{"loss_d", out.loss.item<double>()},
              {"logits_real", logits_real.mean().item<double>()},
              {"logits_fake", logits_fake.mean().item<double>()}};
  return out;
}

}  // namespace lf
