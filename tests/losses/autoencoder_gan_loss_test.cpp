// AutoencoderGANLoss: parity with taming's VQLPIPSWithDiscriminator and ldm's
// LPIPSWithDiscriminator (generator and discriminator passes, gradient at the last layer), the
// disc_start gate, the perceptual-off path, parameter groups, checkpoint keys and options JSON.
#include "losses/autoencoder_gan_loss.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>

#include "losses/loss_test_util.h"
#include "models/model_test_util.h"

namespace lf {
namespace {

using test::expect_close;
using test::expect_error;

AutoencoderGANLossOptions small(const std::string& kind) {
  return AutoencoderGANLossOptions().kind(kind).disc_ndf(4);
}

// Runs the generator and discriminator passes on a fixture of make_loss_fixtures.py, in float64
// and float32, and compares every term, the total losses and d loss / d last_layer.
void expect_parity(const std::function<AutoencoderGANLoss()>& make, const std::string& name) {
  for (const auto& precision : test::parity_precisions()) {
    SCOPED_TRACE(precision.name);
    AutoencoderGANLoss loss = make();
    const auto fx = test::in_precision(test::load_loss_fixture(name), precision.dtype);
    TensorMap state = test::rename_prefix(fx, "disc.", "discriminator.");
    if (fx.count("logvar")) state["logvar"] = fx.at("logvar");
    loss->to(precision.dtype);  // before loading: the fixture's running statistics are float64
    load_module_state(*loss, state, /*strict=*/true);  // also: the keys are ldm's / taming's
    loss->train();
    const auto last_layer = fx.at("last_layer").clone().requires_grad_(true);
    const auto x = fx.at("x");
    const auto x_rec = torch::conv2d(fx.at("h"), last_layer, {}, 1, 1);
    const int64_t step = fx.at("step").item<int64_t>();

    const LossOutput g = loss->generator_loss(x, x_rec, fx.at("regulariser"), step, last_layer);
    EXPECT_EQ(g.loss.scalar_type(), precision.dtype);
    const double tol = precision.forward;
    // The adaptive weight is a ratio of two gradient norms at the last layer, and the loss is
    // scaled by it: held to the gradient tolerance (on AVX2, float32 LPIPS gradients route through
    // other ReLU / max-pool ties and move d_weight by ~0.4%).
    const double tol_adaptive = std::max(tol, precision.gradient);
    expect_close(g.loss, fx.at("out.loss"), tol_adaptive, "loss");
    expect_close(g.logs.at("loss"), fx.at("out.loss"), tol_adaptive, "logs.loss");
    expect_close(g.logs.at("loss_nll"), fx.at("log.nll_loss"), tol, "loss_nll");
    expect_close(g.logs.at("loss_g"), fx.at("log.g_loss"), tol, "loss_g");
    expect_close(g.logs.at("d_weight"), fx.at("log.d_weight"), tol_adaptive, "d_weight");
    // taming logs disc_factor as torch.tensor(0.8): a float32 value even in a float64 run.
    expect_close(g.logs.at("disc_factor"), fx.at("log.disc_factor"), std::max(tol, 1e-7),
                 "disc_factor");
    // The reference's rec_loss is L1 + perceptual_weight * LPIPS; ours logs the two apart.
    expect_close(g.logs.at("loss_rec") + loss->options().perceptual_weight() * g.logs.at("loss_p"),
                 fx.at("log.rec_loss"), tol, "loss_rec + loss_p");
    if (fx.count("log.p_loss"))
      expect_close(g.logs.at("loss_p"), fx.at("log.p_loss"), tol, "loss_p");
    if (fx.count("log.quant_loss"))
      expect_close(g.logs.at("loss_codebook"), fx.at("log.quant_loss"), tol, "loss_codebook");
    if (fx.count("log.kl_loss")) {
      expect_close(g.logs.at("loss_kl"), fx.at("log.kl_loss"), tol, "loss_kl");
      expect_close(g.logs.at("logvar"), fx.at("log.logvar"), tol, "logvar");
    }
    g.loss.backward();  // works after the adaptive weight's two autograd::grad calls
    ASSERT_TRUE(last_layer.grad().defined());
    test::expect_close_l2(last_layer.grad(), fx.at("grad_last_layer"), precision.gradient,
                          "d loss / d last_layer");

    const LossOutput d = loss->discriminator_loss(x, x_rec, step);
    expect_close(d.loss, fx.at("out.loss_d"), tol, "loss_d");
    expect_close(d.logs.at("loss_d"), fx.at("log.disc_loss"), tol, "logs.loss_d");
    expect_close(d.logs.at("logits_real"), fx.at("log.logits_real"), tol, "logits_real");
    expect_close(d.logs.at("logits_fake"), fx.at("log.logits_fake"), tol, "logits_fake");
  }
}

TEST(AutoencoderGANLoss, MatchesTamingVQLPIPSWithDiscriminator) {
  expect_parity(
      [] {
        AutoencoderGANLoss loss(small("vq")
                                    .disc_start(3)
                                    .codebook_weight(0.7)
                                    .disc_weight(0.5)
                                    .disc_factor(0.8)
                                    .perceptual_weights(test::lpips_formula_file()));
        EXPECT_TRUE(loss->has_perceptual());
        return loss;
      },
      "loss_vq");
}

TEST(AutoencoderGANLoss, MatchesLdmLPIPSWithDiscriminator) {
  expect_parity(  // d_weight hits the 1e4 clamp here (times disc_weight 0.5)
      [] {
        return AutoencoderGANLoss(small("kl")
                                      .disc_start(3)
                                      .logvar_init(0.3)
                                      .kl_weight(0.01)
                                      .disc_weight(0.5)
                                      .disc_loss("vanilla")
                                      .perceptual_weights(test::lpips_formula_file()));
      },
      "loss_kl");
}

// A one-conv "decoder" whose weight is the last layer.
struct Generator {
  torch::Tensor h = torch::randn({2, 4, 32, 32});
  torch::Tensor last_layer = (0.1 * torch::randn({3, 4, 3, 3})).requires_grad_(true);
  torch::Tensor x = torch::rand({2, 3, 32, 32}) * 2 - 1;
  torch::Tensor x_rec() const { return torch::conv2d(h, last_layer, {}, 1, 1); }
};

TEST(AutoencoderGANLoss, DiscStartGatesTheAdversarialTerms) {
  AutoencoderGANLoss loss(small("vq").disc_start(5).codebook_weight(2.0));
  EXPECT_FALSE(loss->discriminator_active(4));
  EXPECT_TRUE(loss->discriminator_active(5));
  Generator gen;
  const auto codebook = torch::tensor(0.25);
  const auto before = loss->generator_loss(gen.x, gen.x_rec(), codebook, 4, gen.last_layer);
  EXPECT_EQ(before.logs.at("disc_factor"), 0.0);
  // Skipped before disc_start (taming computes it and multiplies by 0).
  EXPECT_EQ(before.logs.at("d_weight"), 0.0);
  EXPECT_EQ(before.logs.at("loss_g"), 0.0);
  EXPECT_NEAR(before.loss.item<double>(), before.logs.at("loss_nll") + 2.0 * 0.25, 1e-6);
  EXPECT_EQ(loss->discriminator_loss(gen.x, gen.x_rec(), 4).loss.item<double>(), 0.0);

  const auto after = loss->generator_loss(gen.x, gen.x_rec(), codebook, 5, gen.last_layer);
  EXPECT_EQ(after.logs.at("disc_factor"), 1.0);
  EXPECT_NEAR(after.loss.item<double>(),
              after.logs.at("loss_nll") + after.logs.at("d_weight") * after.logs.at("loss_g") + 0.5,
              1e-5);
  EXPECT_GT(loss->discriminator_loss(gen.x, gen.x_rec(), 5).loss.item<double>(), 0.0);

  // kind kl with disc_factor 0: no adaptive weight at all.
  AutoencoderGANLoss kl(small("kl").disc_factor(0.0));
  const auto out = kl->generator_loss(gen.x, gen.x_rec(), torch::ones({2}), 10, torch::Tensor());
  EXPECT_EQ(out.logs.at("d_weight"), 0.0);
}

TEST(AutoencoderGANLoss, PerceptualOffLogsOneWarning) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  AutoencoderGANLoss no_file(small("vq"));
  AutoencoderGANLoss zero_weight(
      small("kl").perceptual_weight(0.0).perceptual_weights("/nonexistent/lpips.safetensors"));
  EXPECT_TRUE(sink->last_formatted().empty());  // nothing until training starts
  EXPECT_FALSE(no_file->has_perceptual());
  EXPECT_FALSE(zero_weight->has_perceptual());

  Generator gen;
  no_file->generator_loss(gen.x, gen.x_rec(), torch::tensor(0.0), 0, gen.last_layer);
  const auto out =
      no_file->generator_loss(gen.x, gen.x_rec(), torch::tensor(0.0), 0, gen.last_layer);
  EXPECT_EQ(out.logs.at("loss_p"), 0.0);
  EXPECT_NEAR(out.logs.at("loss_nll"), (gen.x - gen.x_rec()).abs().mean().item<double>(), 1e-6);
  EXPECT_NEAR(out.logs.at("loss_rec"), out.logs.at("loss_nll"), 1e-6);

  // kl: nll = sum(|x - x_rec| / e^logvar + logvar) / N with logvar 0 here.
  const auto kl =
      zero_weight->generator_loss(gen.x, gen.x_rec(), torch::tensor({1.0, 3.0}), 0, gen.last_layer);
  EXPECT_NEAR(kl.logs.at("loss_nll"), (gen.x - gen.x_rec()).abs().sum().item<double>() / 2, 1e-3);
  EXPECT_DOUBLE_EQ(kl.logs.at("loss_kl"), 2.0);

  spdlog::set_default_logger(previous);
  const auto messages = sink->last_formatted();
  ASSERT_EQ(messages.size(), 2u);  // one each, at the first step
  EXPECT_NE(messages[0].find("no perceptual_weights file given: the LPIPS term is off"),
            std::string::npos);
  EXPECT_NE(messages[1].find("perceptual_weight is 0: the LPIPS term is off"), std::string::npos);
}

TEST(AutoencoderGANLoss, DiscriminatorParametersAreSeparate) {
  AutoencoderGANLoss loss(small("kl").perceptual_weights(test::lpips_formula_file()));
  const auto disc = loss->discriminator_parameters();
  size_t disc_named = 0;
  for (const auto& p : loss->named_parameters()) {
    const bool in_disc = p.key().rfind("discriminator.", 0) == 0;
    disc_named += in_disc;
    if (!in_disc) {
      EXPECT_EQ(p.key(), "logvar");  // LPIPS is not registered
    }
    const bool listed = std::any_of(disc.begin(), disc.end(), [&](const torch::Tensor& t) {
      return t.unsafeGetTensorImpl() == p.value().unsafeGetTensorImpl();
    });
    EXPECT_EQ(listed, in_disc) << p.key();
  }
  EXPECT_EQ(disc.size(), disc_named);
  EXPECT_EQ(loss->parameters().size(), disc.size() + 1);
}

TEST(AutoencoderGANLoss, FollowsTheInputsDevice) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  AutoencoderGANLoss loss(small("vq").perceptual_weights(test::lpips_formula_file()));
  Generator gen;
  const auto cpu = loss->generator_loss(gen.x, gen.x_rec(), torch::tensor(0.1), 10, gen.last_layer);
  loss->to(torch::kCUDA);  // LPIPS is not registered: it moves on first use
  const auto last_layer = gen.last_layer.detach().cuda().requires_grad_(true);
  const auto x_rec = torch::conv2d(gen.h.cuda(), last_layer, {}, 1, 1);
  const auto gpu =
      loss->generator_loss(gen.x.cuda(), x_rec, torch::tensor(0.1).cuda(), 10, last_layer);
  EXPECT_TRUE(gpu.loss.is_cuda());
  EXPECT_NEAR(gpu.logs.at("loss_p"), cpu.logs.at("loss_p"), 1e-2 * cpu.logs.at("loss_p"));
  gpu.loss.backward();
  EXPECT_TRUE(last_layer.grad().defined());
  EXPECT_TRUE(loss->discriminator_loss(gen.x.cuda(), x_rec, 10).loss.is_cuda());
}

TEST(AutoencoderGANLoss, StateDictKeysMatchTheReferences) {
  const auto vq = module_state(*AutoencoderGANLoss(
      small("vq").use_actnorm(true).perceptual_weights(test::lpips_formula_file())));
  for (const auto& [key, value] : vq) EXPECT_EQ(key.rfind("discriminator.main.", 0), 0u) << key;
  for (const char* key :
       {"discriminator.main.0.weight", "discriminator.main.2.bias", "discriminator.main.3.loc",
        "discriminator.main.3.initialized", "discriminator.main.11.weight"})
    EXPECT_TRUE(vq.count(key)) << key;

  const auto kl = module_state(*AutoencoderGANLoss(small("kl").logvar_init(0.5)));
  EXPECT_EQ(kl.at("logvar").dim(), 0);
  EXPECT_EQ(kl.at("logvar").item<double>(), 0.5);
  EXPECT_TRUE(kl.count("discriminator.main.3.running_var"));
  EXPECT_FALSE(kl.count("discriminator.main.2.bias"));
  EXPECT_EQ(kl.size(), module_state(*AutoencoderGANLoss(small("vq"))).size() + 1);
}

TEST(AutoencoderGANLoss, AdaptiveWeightOutsideTraining) {
  AutoencoderGANLoss loss(small("vq"));
  Generator gen;
  loss->eval();
  {
    torch::NoGradGuard no_grad;  // validation: no graph, d_weight 0 as taming's except branch
    const auto out =
        loss->generator_loss(gen.x, gen.x_rec(), torch::tensor(0.1), 10, gen.last_layer);
    EXPECT_EQ(out.logs.at("d_weight"), 0.0);
  }
  loss->train();
  torch::NoGradGuard no_grad;
  expect_error(
      [&] { loss->generator_loss(gen.x, gen.x_rec(), torch::tensor(0.1), 10, gen.last_layer); },
      "[calculate_adaptive_weight] nll_loss has no graph");
}

TEST(AutoencoderGANLoss, RejectsBadInputsAndOptions) {
  AutoencoderGANLoss kl(small("kl"));
  Generator gen;
  expect_error(
      [&] { kl->generator_loss(gen.x, gen.x_rec(), torch::tensor(1.0), 0, gen.last_layer); },
      "regulariser: expected the per-sample KL [2], got []");
  expect_error([&] { kl->discriminator_loss(gen.x, gen.x.slice(0, 0, 1), 0); },
               "expected x and x_rec of the same shape");
  expect_error([&] { AutoencoderGANLoss loss(small("gan")); }, "kind: expected one of vq, kl");
  expect_error([&] { AutoencoderGANLoss loss(small("vq").disc_loss("wgan")); }, "disc_loss");
  expect_error([&] { AutoencoderGANLoss loss(small("vq").perceptual_weights("/nonexistent.st")); },
               "/nonexistent.st");
}

TEST(AutoencoderGANLoss, OptionsJsonRoundTrip) {
  const auto o = AutoencoderGANLossOptions()
                     .kind("kl")
                     .disc_start(50001)
                     .disc_weight(0.5)
                     .disc_loss("vanilla")
                     .disc_ndf(32)
                     .use_actnorm(true)
                     .perceptual_weights("lpips.safetensors")
                     .kl_weight(1e-6)
                     .logvar_init(0.1);
  const Json json = o;
  AutoencoderGANLossOptions back;
  from_json(json, back);
  EXPECT_EQ(Json(back), json);
  EXPECT_EQ(json.size(), 15u);
  AutoencoderGANLossOptions partial;
  from_json(Json{{"disc_start", 7}}, partial);
  EXPECT_EQ(partial.disc_start(), 7);
  EXPECT_EQ(partial.kind(), "vq");
  expect_error([&] { from_json(Json{{"disc_strat", 7}}, partial); }, "disc_strat");
}

}  // namespace
}  // namespace lf
