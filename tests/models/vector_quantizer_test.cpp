// Tests of the vector quantizer: nearest-code search against brute force, straight-through and
// loss gradients against hand computations, EMA, k-means init, dead-code restart, statistics,
// l2 / low-dimensional lookup, save/load round trip and errors.
#include "models/vector_quantizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "core/error.h"

namespace lf {
namespace {

namespace F = torch::nn::functional;

// Our pick is the brute-force argmin, or ties with it in float precision.
void expect_nearest(const torch::Tensor& x, const torch::Tensor& codes, const torch::Tensor& got) {
  auto dist = torch::cdist(x.to(torch::kDouble), codes.to(torch::kDouble)).pow(2);  // [M, K]
  auto want = dist.argmin(1);
  auto best = dist.gather(1, want.unsqueeze(1)).squeeze(1);
  auto ours = dist.gather(1, got.unsqueeze(1)).squeeze(1);
  EXPECT_LE((ours - best).abs().max().item<double>(), 1e-4);
  EXPECT_GE(got.eq(want).to(torch::kDouble).mean().item<double>(), 0.999);
}

// 8 well-separated blobs in 16-D: centres [8, 16], points [8 * per_blob, 16].
std::pair<torch::Tensor, torch::Tensor> blobs(int64_t per_blob) {
  auto centres = torch::rand({8, 16}) * 20 - 10;
  auto points = centres.repeat_interleave(per_blob, 0) + 0.1 * torch::randn({8 * per_blob, 16});
  return {centres, points};
}

torch::Tensor as_nchw(const torch::Tensor& flat) {  // [M, D] -> [M, D, 1, 1]
  return flat.unsqueeze(2).unsqueeze(3).contiguous();
}

double quantisation_error(VectorQuantizer& vq, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  auto idx = vq->nearest(x);
  return (x - vq->codebook().index_select(0, idx)).pow(2).sum(1).mean().item<double>();
}

TEST(VectorQuantizer, StateHasTamingKeysOnly) {
  VectorQuantizer vq(VectorQuantizerOptions(16, 8));
  std::set<std::string> keys;
  for (const auto& p : vq->named_parameters()) keys.insert(p.key());
  for (const auto& b : vq->named_buffers()) keys.insert(b.key());
  EXPECT_EQ(keys, std::set<std::string>{"embedding.weight"});
  auto w = vq->embedding->weight;
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{16, 8}));
  EXPECT_LE(w.abs().max().item<double>(), 1.0 / 16);

  VectorQuantizer full(VectorQuantizerOptions(16, 8)
                           .use_ema(true)
                           .kmeans_init(true)
                           .dead_code_restart(true)
                           .lookup_dim(4));
  keys.clear();
  for (const auto& p : full->named_parameters()) keys.insert(p.key());
  for (const auto& b : full->named_buffers()) keys.insert(b.key());
  EXPECT_EQ(keys,
            (std::set<std::string>{"embedding.weight", "project_in.weight", "project_in.bias",
                                   "project_out.weight", "project_out.bias", "ema_cluster_size",
                                   "ema_embed_sum", "usage", "initialized"}));
}

TEST(VectorQuantizer, NearestMatchesBruteForce) {
  for (int64_t chunk : {8192, 100, 7}) {
    VectorQuantizer vq(VectorQuantizerOptions(64, 8).chunk_size(chunk));
    {
      torch::NoGradGuard no_grad;
      vq->embedding->weight.normal_();
    }
    auto x = torch::randn({1000, 8});
    auto idx = vq->nearest(x);
    EXPECT_EQ(idx.scalar_type(), torch::kLong);
    EXPECT_EQ(idx.sizes(), (std::vector<int64_t>{1000}));
    expect_nearest(x, vq->embedding->weight.detach(), idx);
  }
}

TEST(VectorQuantizer, ForwardShapesAndIndices) {
  VectorQuantizer vq(VectorQuantizerOptions(32, 4).chunk_size(10));
  vq->eval();
  {
    torch::NoGradGuard no_grad;
    vq->embedding->weight.normal_();
  }
  auto z = torch::randn({2, 4, 5, 3});
  auto out = vq->forward(z);
  EXPECT_EQ(out.z_q.sizes(), z.sizes());
  EXPECT_EQ(out.indices.sizes(), (std::vector<int64_t>{2, 5, 3}));
  EXPECT_EQ(out.indices.scalar_type(), torch::kLong);
  auto flat = z.permute({0, 2, 3, 1}).reshape({-1, 4});
  expect_nearest(flat, vq->embedding->weight.detach(), out.indices.reshape({-1}));
  // z_q holds the chosen codes (up to the rounding of z + (e - z)).
  EXPECT_TRUE(torch::allclose(out.z_q, vq->lookup(out.indices), 1e-5, 1e-6));
  EXPECT_EQ(out.stats.dead_codes, 0);
}

TEST(VectorQuantizer, StraightThroughGradientIsIdentity) {
  VectorQuantizer vq(VectorQuantizerOptions(16, 6));
  auto z = torch::randn({2, 6, 3, 4}, torch::requires_grad());
  auto g = torch::randn({2, 6, 3, 4});
  auto out = vq->forward(z);
  (out.z_q * g).sum().backward();
  EXPECT_TRUE(torch::equal(z.grad(), g));
}

// One vector, two codes: M = 1, D = 2; z is nearest to code 1.
struct TwoCodes {
  VectorQuantizer vq;
  torch::Tensor z, e;
  explicit TwoCodes(bool legacy) : vq(VectorQuantizerOptions(2, 2).beta(0.25).legacy_beta(legacy)) {
    e = torch::tensor({{5.0f, 5.0f}, {1.0f, -1.0f}});
    {
      torch::NoGradGuard no_grad;
      vq->embedding->weight.copy_(e);
    }
    z = torch::tensor({0.5f, -0.25f}).view({1, 2, 1, 1}).clone().set_requires_grad(true);
  }
};

TEST(VectorQuantizer, LossGradientsByHand) {
  for (bool legacy : {false, true}) {
    TwoCodes t(legacy);
    auto out = t.vq->forward(t.z);
    EXPECT_EQ(out.indices.item<int64_t>(), 1);
    out.loss.backward();
    const double md = 1 * 2, beta = 0.25;
    auto zv = t.z.detach().view({2});
    auto diff = t.e[1] - zv;  // e_k - z
    const double w_codebook = legacy ? beta : 1.0, w_commit = legacy ? 1.0 : beta;
    auto grad_e = t.vq->embedding->weight.grad();
    EXPECT_TRUE(torch::allclose(grad_e[1], w_codebook * 2 * diff / md)) << grad_e;
    EXPECT_TRUE(torch::equal(grad_e[0], torch::zeros({2})));
    EXPECT_TRUE(torch::allclose(t.z.grad().view({2}), w_commit * 2 * (-diff) / md)) << t.z.grad();
    const double sq = diff.pow(2).mean().item<double>();
    EXPECT_NEAR(out.loss_codebook.item<double>(), sq, 1e-6);
    EXPECT_NEAR(out.loss_commit.item<double>(), sq, 1e-6);
    EXPECT_NEAR(out.loss.item<double>(), (w_codebook + w_commit) * sq, 1e-6);
  }
}

TEST(VectorQuantizer, EmaStepMatchesFormula) {
  const int64_t k = 4;
  const double decay = 0.9, eps = 1e-5;
  VectorQuantizer vq(VectorQuantizerOptions(k, 2).use_ema(true).ema_decay(decay).ema_epsilon(eps));
  auto e0 = torch::tensor({{0.f, 0.f}, {10.f, 0.f}, {0.f, 10.f}, {-10.f, -10.f}});
  {
    torch::NoGradGuard no_grad;
    vq->embedding->weight.copy_(e0);
    vq->named_buffers()["ema_embed_sum"].copy_(e0);  // consistent with the initial codebook
  }
  EXPECT_FALSE(vq->embedding->weight.requires_grad());
  // Codes 0, 1 and 2 are used (3, 1 and 2 times), code 3 is not.
  auto x =
      torch::tensor({{0.5f, 0.f}, {0.f, 1.f}, {-1.f, 0.5f}, {9.f, 1.f}, {1.f, 8.f}, {0.f, 11.f}});
  auto out = vq->forward(as_nchw(x));
  EXPECT_TRUE(
      torch::equal(out.indices.view({-1}), torch::tensor({0, 0, 0, 1, 2, 2}).to(torch::kLong)));

  auto n_k = torch::tensor({3.f, 1.f, 2.f, 0.f});
  auto s_k = torch::stack({x[0] + x[1] + x[2], x[3], x[4] + x[5], torch::zeros({2})});
  auto size = decay * torch::ones({k}) + (1 - decay) * n_k;
  auto sum = decay * e0 + (1 - decay) * s_k;
  auto n = size.sum();
  auto smoothed = (size + eps) / (n + k * eps) * n;
  auto want = sum / smoothed.unsqueeze(1);
  EXPECT_TRUE(torch::allclose(vq->embedding->weight, want, 1e-5, 1e-6)) << vq->embedding->weight;
  EXPECT_TRUE(torch::allclose(vq->named_buffers()["ema_cluster_size"], size));
  // The unused code barely moves (no 1/epsilon blow-up).
  EXPECT_TRUE(torch::allclose(vq->embedding->weight[3], e0[3], 1e-2));
  // EMA drops the codebook term: loss = beta * commitment.
  EXPECT_NEAR(out.loss.item<double>(), 0.25 * out.loss_commit.item<double>(), 1e-7);
}

TEST(VectorQuantizer, KmeansInitBeatsRandomInit) {
  auto [centres, points] = blobs(64);
  VectorQuantizer random_vq(VectorQuantizerOptions(8, 16));
  VectorQuantizer kmeans_vq(VectorQuantizerOptions(8, 16).kmeans_init(true).kmeans_iters(10));
  const double random_error = quantisation_error(random_vq, points);
  kmeans_vq->train();
  kmeans_vq->forward(as_nchw(points));
  EXPECT_TRUE(kmeans_vq->named_buffers()["initialized"].item<bool>());
  const double kmeans_error = quantisation_error(kmeans_vq, points);
  // k-means++ seeds find every blob: the error is about the blobs' own variance, 16 x 0.1^2.
  EXPECT_LT(kmeans_error, 0.3) << kmeans_error;
  EXPECT_LT(kmeans_error, 1e-3 * random_error) << kmeans_error << " vs " << random_error;

  // Only the first training batch initialises.
  auto before = kmeans_vq->embedding->weight.clone();
  kmeans_vq->forward(as_nchw(points * 2));
  EXPECT_TRUE(torch::equal(kmeans_vq->embedding->weight, before));

  // Fewer vectors than codes: rows are drawn with replacement, no error.
  VectorQuantizer small(VectorQuantizerOptions(32, 16).kmeans_init(true));
  small->forward(as_nchw(points.narrow(0, 0, 5)));
  EXPECT_TRUE(small->embedding->weight.isfinite().all().item<bool>());
}

TEST(VectorQuantizer, DeadCodeRestartRepairsCollapse) {
  const int64_t k = 64;
  auto collapse = [&](bool restart) {
    VectorQuantizer vq(VectorQuantizerOptions(k, 8)
                           .dead_code_restart(restart)
                           .usage_decay(0.5)
                           .dead_code_threshold(1e-2));
    {
      torch::NoGradGuard no_grad;
      vq->embedding->weight.fill_(100);  // all codes but one far from the data
      vq->embedding->weight[0].zero_();
    }
    vq->train();
    CodebookStats first, last;
    int64_t restarted = 0;
    for (int step = 0; step < 12; ++step) {
      auto out = vq->forward(torch::randn({4, 8, 16, 16}));
      if (step == 0) first = out.stats;
      last = out.stats;
      restarted += out.stats.restarted_codes;
    }
    EXPECT_NEAR(first.usage_fraction, 1.0 / k, 1e-12);
    EXPECT_NEAR(first.perplexity, 1.0, 1e-9);
    return std::make_pair(last, restarted);
  };
  auto [with_restart, restarted] = collapse(true);
  EXPECT_EQ(restarted, k - 1);
  EXPECT_GE(with_restart.usage_fraction, 0.9);
  EXPECT_GT(with_restart.perplexity, 0.5 * k);
  EXPECT_EQ(with_restart.dead_codes, 0);

  auto [without, none] = collapse(false);
  EXPECT_EQ(none, 0);
  EXPECT_NEAR(without.usage_fraction, 1.0 / k, 1e-12);
  EXPECT_EQ(without.dead_codes, k - 1);  // the collapse is visible without repair
}

TEST(VectorQuantizer, StatsFromCounts) {
  auto uniform = VectorQuantizerImpl::stats_from_counts(torch::full({16}, 5.0));
  EXPECT_NEAR(uniform.perplexity, 16.0, 1e-9);
  EXPECT_NEAR(uniform.entropy, std::log(16.0), 1e-12);
  EXPECT_DOUBLE_EQ(uniform.usage_fraction, 1.0);

  auto one_hot = torch::zeros({16}, torch::kLong);
  one_hot[3] = 42;
  auto collapsed = VectorQuantizerImpl::stats_from_counts(one_hot);
  EXPECT_DOUBLE_EQ(collapsed.perplexity, 1.0);
  EXPECT_DOUBLE_EQ(collapsed.entropy, 0.0);
  EXPECT_DOUBLE_EQ(collapsed.usage_fraction, 1.0 / 16);

  auto half = VectorQuantizerImpl::stats_from_counts(torch::tensor({1, 1, 0, 0}));
  EXPECT_NEAR(half.perplexity, 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(half.usage_fraction, 0.5);

  auto empty = VectorQuantizerImpl::stats_from_counts(torch::zeros({4}));
  EXPECT_DOUBLE_EQ(empty.usage_fraction, 0.0);
  EXPECT_DOUBLE_EQ(empty.perplexity, 1.0);
}

TEST(VectorQuantizer, L2NormalizedLookupIsCosine) {
  VectorQuantizer vq(VectorQuantizerOptions(32, 8).l2_normalize(true).chunk_size(13));
  vq->eval();
  {
    torch::NoGradGuard no_grad;
    vq->embedding->weight.normal_();
  }
  auto codes = vq->codebook();
  EXPECT_TRUE(torch::allclose(codes.norm(2, 1), torch::ones({32}), 1e-5));
  auto z = torch::randn({2, 8, 4, 4}) * 3;
  auto out = vq->forward(z);
  auto flat = z.permute({0, 2, 3, 1}).reshape({-1, 8});
  auto cosine = F::normalize(flat, F::NormalizeFuncOptions().dim(1)).mm(codes.t());  // [M, K]
  auto want = cosine.argmax(1);
  auto picked = cosine.gather(1, out.indices.reshape({-1, 1})).squeeze(1);
  EXPECT_LE((cosine.gather(1, want.unsqueeze(1)).squeeze(1) - picked).abs().max().item<double>(),
            1e-5);
  EXPECT_TRUE(torch::allclose(out.z_q, vq->lookup(out.indices), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(out.z_q.norm(2, 1), torch::ones({2, 4, 4}), 1e-5));
}

TEST(VectorQuantizer, LowDimensionalLookup) {
  VectorQuantizer vq(VectorQuantizerOptions(32, 16).lookup_dim(4).l2_normalize(true));
  vq->eval();
  EXPECT_EQ(vq->embedding->weight.sizes(), (std::vector<int64_t>{32, 4}));
  EXPECT_EQ(vq->codebook().sizes(), (std::vector<int64_t>{32, 4}));
  auto z = torch::randn({3, 16, 5, 5}, torch::requires_grad());
  auto out = vq->forward(z);
  EXPECT_EQ(out.z_q.sizes(), z.sizes());
  EXPECT_EQ(out.indices.sizes(), (std::vector<int64_t>{3, 5, 5}));
  EXPECT_TRUE(torch::allclose(out.z_q, vq->lookup(out.indices), 1e-5, 1e-6));
  (out.z_q.sum() + out.loss).backward();
  EXPECT_TRUE(z.grad().defined());
  EXPECT_GT(z.grad().abs().sum().item<double>(), 0);
}

TEST(VectorQuantizer, EmaWithKmeansAndRestartStaysFinite) {
  VectorQuantizer vq(VectorQuantizerOptions(16, 4)
                         .use_ema(true)
                         .kmeans_init(true)
                         .dead_code_restart(true)
                         .usage_decay(0.5)
                         .dead_code_threshold(0.05));
  vq->train();
  for (int step = 0; step < 20; ++step) {
    auto out = vq->forward(torch::randn({2, 4, 8, 8}) + (step % 2 ? 3.0 : 0.0));
    ASSERT_TRUE(std::isfinite(out.loss.item<double>()));
  }
  EXPECT_TRUE(vq->embedding->weight.isfinite().all().item<bool>());
}

TEST(VectorQuantizer, SaveLoadRoundTrip) {
  auto options = VectorQuantizerOptions(16, 8)
                     .use_ema(true)
                     .kmeans_init(true)
                     .dead_code_restart(true)
                     .lookup_dim(4);
  VectorQuantizer vq(options);
  vq->train();
  vq->forward(torch::randn({2, 8, 6, 6}));
  const auto path = (std::filesystem::temp_directory_path() / "lf_vq_round_trip.pt").string();
  torch::save(vq, path);
  VectorQuantizer loaded(options);
  torch::load(loaded, path);
  std::filesystem::remove(path);
  EXPECT_TRUE(loaded->named_buffers()["initialized"].item<bool>());

  vq->eval();
  loaded->eval();
  auto z = torch::randn({2, 8, 6, 6});
  auto a = vq->forward(z), b = loaded->forward(z);
  EXPECT_TRUE(torch::equal(a.z_q, b.z_q));
  EXPECT_TRUE(torch::equal(a.indices, b.indices));
  EXPECT_TRUE(torch::equal(a.loss, b.loss));
  for (const auto& buffer : vq->named_buffers())
    EXPECT_TRUE(torch::equal(buffer.value(), loaded->named_buffers()[buffer.key()]))
        << buffer.key();
}

TEST(VectorQuantizer, BadInputsThrow) {
  VectorQuantizer vq(VectorQuantizerOptions(8, 64));
  try {
    vq->forward(torch::randn({2, 32, 4, 4}));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[vq::forward] expected [N, 64, H, W], got [2, 32, 4, 4]");
  }
  EXPECT_THROW(vq->forward(torch::randn({64, 4, 4})), Error);
  EXPECT_THROW(vq->nearest(torch::randn({10, 3})), Error);
  try {
    vq->lookup(torch::tensor({0, 8}).view({1, 1, 2}).to(torch::kLong));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[vq::lookup] indices out of range [0, 8)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(vq->lookup(torch::full({1, 2, 2}, -1, torch::kLong)), Error);
  EXPECT_THROW(vq->lookup(torch::zeros({1, 2, 2}, torch::kInt)), Error);
  EXPECT_THROW(vq->lookup(torch::zeros({4}, torch::kLong)), Error);
  EXPECT_THROW((void)VectorQuantizer(VectorQuantizerOptions(0, 4)), Error);
  EXPECT_THROW((void)VectorQuantizer(VectorQuantizerOptions(4, 4).chunk_size(-1)), Error);
}

}  // namespace
}  // namespace lf
