// PatchGAN discriminator and ActNorm: taming's key names, parity with NLayerDiscriminator
// (BatchNorm in eval and train mode, ActNorm through its data-dependent init), weights_init
// statistics, shapes, and a save/load round trip.
#include "losses/patch_discriminator.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "losses/act_norm.h"
#include "losses/loss_test_util.h"
#include "models/model_test_util.h"

namespace lf {
namespace {

using test::expect_close;

PatchDiscriminatorOptions small(bool actnorm) {
  return PatchDiscriminatorOptions().ndf(4).n_layers(3).use_actnorm(actnorm);
}

std::vector<std::string> keys_of(const TensorMap& map) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : map) keys.push_back(key);
  return keys;
}

TEST(PatchDiscriminator, KeysAreTamings) {
  for (const bool actnorm : {false, true}) {
    const auto fx = test::load_loss_fixture(actnorm ? "disc_actnorm" : "disc_bn");
    PatchDiscriminator d(small(actnorm));
    EXPECT_EQ(keys_of(module_state(*d)), keys_of(test::rename_prefix(fx, "disc.")));
  }
  const auto bn = module_state(*PatchDiscriminator(small(false)));
  EXPECT_FALSE(bn.count("main.2.bias"));  // BatchNorm: no conv bias
  EXPECT_EQ(bn.at("main.3.num_batches_tracked").scalar_type(), torch::kLong);
  const auto an = module_state(*PatchDiscriminator(small(true)));
  EXPECT_TRUE(an.count("main.2.bias"));
  EXPECT_EQ(an.at("main.3.initialized").scalar_type(), torch::kUInt8);
  EXPECT_EQ(an.at("main.3.loc").sizes(), torch::IntArrayRef({1, 8, 1, 1}));
}

TEST(PatchDiscriminator, MatchesTamingWithBatchNorm) {
  for (const auto& precision : test::parity_precisions()) {
    SCOPED_TRACE(precision.name);
    const auto fx = test::in_precision(test::load_loss_fixture("disc_bn"), precision.dtype);
    PatchDiscriminator d(small(false));
    d->to(precision.dtype);
    load_module_state(*d, test::rename_prefix(fx, "disc."), /*strict=*/true);
    torch::NoGradGuard no_grad;
    d->eval();  // running statistics of the file
    expect_close(d(fx.at("x1")), fx.at("eval_out"), precision.forward, "eval");
    d->train();  // batch statistics
    expect_close(d(fx.at("x0")), fx.at("train_out"), precision.forward, "train");
  }
}

TEST(PatchDiscriminator, MatchesTamingWithActNormInit) {
  for (const auto& precision : test::parity_precisions()) {
    SCOPED_TRACE(precision.name);
    const auto fx = test::in_precision(test::load_loss_fixture("disc_actnorm"), precision.dtype);
    PatchDiscriminator d(small(true));
    d->to(precision.dtype);
    load_module_state(*d, test::rename_prefix(fx, "disc."), /*strict=*/true);
    d->train();
    {
      torch::NoGradGuard no_grad;
      expect_close(d(fx.at("x0")), fx.at("train_out"), precision.forward, "first training batch");
    }
    const auto state = module_state(*d);
    for (const auto& [key, expected] : test::rename_prefix(fx, "init.")) {
      if (expected.scalar_type() == torch::kUInt8)
        EXPECT_TRUE(torch::equal(state.at(key), expected)) << key;
      else
        expect_close(state.at(key), expected, precision.forward, key);
    }
    torch::NoGradGuard no_grad;
    d->train();  // already initialised: a second batch changes nothing
    d(fx.at("x1"));
    EXPECT_TRUE(torch::equal(module_state(*d).at("main.3.scale"), state.at("main.3.scale")));
    d->eval();
    expect_close(d(fx.at("x1")), fx.at("eval_out"), precision.forward, "eval after init");
  }
}

TEST(PatchDiscriminator, InitialisesLikeWeightsInit) {
  PatchDiscriminator d;  // ndf 64, 3 layers
  const auto s = module_state(*d);
  std::vector<torch::Tensor> conv, norm_w, norm_b;
  for (const auto& [key, value] : s) {
    if (value.dim() == 4) conv.push_back(value.flatten());
    if (key == "main.3.weight" || key == "main.6.weight" || key == "main.9.weight")
      norm_w.push_back(value);
    if (key == "main.3.bias" || key == "main.6.bias" || key == "main.9.bias")
      norm_b.push_back(value);
  }
  const auto c = torch::cat(conv), w = torch::cat(norm_w);
  EXPECT_NEAR(c.mean().item<double>(), 0.0, 1e-3);
  EXPECT_NEAR(c.std().item<double>(), 0.02, 1e-3);
  EXPECT_NEAR(w.mean().item<double>(), 1.0, 5e-3);
  EXPECT_NEAR(w.std().item<double>(), 0.02, 3e-3);
  EXPECT_EQ(torch::cat(norm_b).abs().max().item<double>(), 0.0);
  // Conv biases keep PyTorch's default uniform(+-1/sqrt(fan_in)) init, as in taming.
  EXPECT_GT(s.at("main.0.bias").abs().max().item<double>(), 0.0);
  EXPECT_LE(s.at("main.0.bias").abs().max().item<double>(), 1.0 / std::sqrt(48.0));
}

TEST(PatchDiscriminator, OutputShapes) {
  torch::NoGradGuard no_grad;
  EXPECT_EQ(PatchDiscriminator()(torch::zeros({2, 3, 64, 64})).sizes(),
            torch::IntArrayRef({2, 1, 6, 6}));
  auto one = PatchDiscriminator(PatchDiscriminatorOptions().n_layers(1).input_nc(1).ndf(8));
  EXPECT_EQ(one(torch::zeros({1, 1, 32, 32})).sizes(), torch::IntArrayRef({1, 1, 14, 14}));
  auto zero = PatchDiscriminator(PatchDiscriminatorOptions().n_layers(0).ndf(8));
  EXPECT_EQ(module_state(*zero).at("main.2.weight").sizes(), torch::IntArrayRef({8, 8, 4, 4}));
  EXPECT_EQ(zero(torch::zeros({1, 3, 32, 32})).sizes(), torch::IntArrayRef({1, 1, 14, 14}));
  test::expect_error(
      [&] {
        PatchDiscriminator()(torch::zeros({1, 1, 32, 32}));
      },
      "[patch_discriminator] expected [N, 3, H, W], got [1, 1, 32, 32]");
}

TEST(PatchDiscriminator, SaveLoadRoundTrip) {
  for (const bool actnorm : {false, true}) {
    PatchDiscriminator d(small(actnorm)), fresh(small(actnorm));
    const auto x = torch::randn({2, 3, 32, 32});
    d->train();
    {
      torch::NoGradGuard no_grad;
      d(x);  // running statistics / ActNorm init
    }
    const std::string path = ::testing::TempDir() + "/disc.safetensors";
    save_module_safetensors(*d, path);
    load_module_safetensors(*fresh, path, /*strict=*/true);
    std::filesystem::remove(path);
    d->eval();
    fresh->eval();
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(d(x), fresh(x))) << "actnorm " << actnorm;
  }
}

TEST(ActNorm, InitialisesToZeroMeanUnitStdOnce) {
  ActNorm norm(5);  // modules start in training mode
  const auto x = torch::randn({8, 5, 6, 6}) * 3 + 2;
  const auto y = norm->forward(x);  // initialises from x
  EXPECT_TRUE(norm->initialized());
  EXPECT_TRUE(torch::equal(norm->forward(x), y));  // and only once
  const auto flat = y.detach().transpose(0, 1).reshape({5, -1});
  EXPECT_LE(flat.mean(1).abs().max().item<double>(), 1e-5);
  EXPECT_LE((flat.std(1) - 1).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(norm->forward(torch::randn({4, 5})).sizes(), torch::IntArrayRef({4, 5}));

  ActNorm fresh(5);
  fresh->eval();  // no init outside training: loc 0, scale 1
  EXPECT_TRUE(torch::equal(fresh->forward(x), x));
  EXPECT_FALSE(fresh->initialized());
  test::expect_error([&] { norm->forward(torch::zeros({1, 4, 2, 2})); }, "[act_norm] expected");
}

}  // namespace
}  // namespace lf
