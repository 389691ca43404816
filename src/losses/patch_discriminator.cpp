// PatchGAN discriminator, layer for layer as taming's NLayerDiscriminator.
#include "losses/patch_discriminator.h"

#include <algorithm>

#include "core/error.h"
#include "losses/act_norm.h"

namespace lf {

PatchDiscriminatorImpl::PatchDiscriminatorImpl(PatchDiscriminatorOptions options)
    : options_(options) {
  namespace nn = torch::nn;
  const auto& o = options_;
  if (o.input_nc() <= 0 || o.ndf() <= 0 || o.n_layers() < 0)
    fail("patch_discriminator", "expected input_nc > 0, ndf > 0, n_layers >= 0, got {}, {}, {}",
         o.input_nc(), o.ndf(), o.n_layers());
  const bool bias = o.use_actnorm();  // BatchNorm's affine shift makes a conv bias redundant
  const auto conv = [](int64_t in, int64_t out, int64_t stride, bool with_bias) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(stride).padding(1).bias(with_bias));
  };
  const auto leaky = [] {
    return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2).inplace(true));
  };
  const auto norm = [&](int64_t channels) {
    return o.use_actnorm() ? nn::AnyModule(ActNorm(channels))
                           : nn::AnyModule(nn::BatchNorm2d(channels));
  };

  main = nn::Sequential();
  main->push_back(conv(o.input_nc(), o.ndf(), 2, true));
  main->push_back(leaky());
  int64_t mult = 1;
  for (int64_t n = 1; n < o.n_layers(); ++n) {
    const int64_t prev = mult;
    mult = std::min<int64_t>(int64_t{1} << std::min<int64_t>(n, 3), 8);
    main->push_back(conv(o.ndf() * prev, o.ndf() * mult, 2, bias));
    main->push_back(norm(o.ndf() * mult));
    main->push_back(leaky());
  }
  const int64_t prev = mult;  // then one stride-1 block, also when n_layers is 0
  mult = std::min<int64_t>(int64_t{1} << std::min<int64_t>(o.n_layers(), 3), 8);
  main->push_back(conv(o.ndf() * prev, o.ndf() * mult, 1, bias));
  main->push_back(norm(o.ndf() * mult));
  main->push_back(leaky());
  main->push_back(conv(o.ndf() * mult, 1, 1, true));
  register_module("main", main);

  torch::NoGradGuard no_grad;
  for (auto& module : main->modules(/*include_self=*/false)) {
    if (auto* c = module->as<nn::Conv2d>()) {
      c->weight.normal_(0.0, 0.02);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      bn->weight.normal_(1.0, 0.02);
      bn->bias.zero_();
    }
  }
}

torch::Tensor PatchDiscriminatorImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.input_nc())
    fail("patch_discriminator", "expected [N, {}, H, W], got {}", options_.input_nc(),
         shape_str(x.sizes()));
  return main->forward(x);
}

}  // namespace lf
