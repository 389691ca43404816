// The vector quantizer of VQ-VAE / VQGAN: chunked nearest-code search, straight-through output,
// codebook/commitment losses, EMA codebook, k-means init, dead-code restart, codebook statistics.
#include "models/vector_quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/collectives.h"
#include "core/error.h"
#include "models/nearest_code.h"

namespace lf {

namespace F = torch::nn::functional;

namespace {

torch::Tensor l2_rows(const torch::Tensor& x) {
  return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(1));
}

// n distinct rows of [0, m) when m >= n, else n rows drawn with replacement.
torch::Tensor random_rows(int64_t m, int64_t n, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  return m >= n ? torch::randperm(m, opts).narrow(0, 0, n) : torch::randint(m, {n}, opts);
}

// k-means++ seeding: each next centre is a row drawn with probability proportional to its squared
// distance to the nearest centre so far. Random rows alone often put two centres in one cluster.
// x: [M, D'] -> [K, D']; with M <= K, random rows (with replacement when M < K).
torch::Tensor kmeans_pp_seeds(const torch::Tensor& x, int64_t k) {
  const int64_t m = x.size(0);
  if (m <= k) return x.index_select(0, random_rows(m, k, x.device()));
  auto centres = torch::empty({k, x.size(1)}, x.options());
  auto x_sq = x.pow(2).sum(1);                                                       // [M]
  auto min_dist = torch::full({m}, std::numeric_limits<float>::max(), x.options());  // [M]
  auto pick = torch::randint(m, {1}, x.options().dtype(torch::kLong));
  for (int64_t i = 0; i < k; ++i) {
    if (i > 0) pick = torch::multinomial(min_dist.clamp_min(1e-30), 1);  // all zero: uniform
    auto c = x.index_select(0, pick).squeeze(0);                         // [D']
    centres[i].copy_(c);
    auto dist = torch::addmv(x_sq + c.dot(c), x, c, /*beta=*/1, /*alpha=*/-2).clamp_min_(0);
    torch::minimum_out(min_dist, min_dist, dist);
  }
  return centres;
}

}  // namespace

VectorQuantizerImpl::VectorQuantizerImpl(VectorQuantizerOptions options)
    : options_(std::move(options)) {
  const int64_t k = options_.num_codes(), d = options_.code_dim();
  if (k <= 0 || d <= 0)
    fail("vq::VectorQuantizer", "expected num_codes > 0 and code_dim > 0, got {} and {}", k, d);
  if (options_.lookup_dim() < 0)
    fail("vq::VectorQuantizer", "expected lookup_dim >= 0, got {}", options_.lookup_dim());
  if (options_.chunk_size() < 0)
    fail("vq::VectorQuantizer", "expected chunk_size >= 0 (0 = automatic), got {}",
         options_.chunk_size());
  if (options_.ema_decay() < 0 || options_.ema_decay() >= 1 || options_.usage_decay() < 0 ||
      options_.usage_decay() >= 1)
    fail("vq::VectorQuantizer", "expected ema_decay and usage_decay in [0, 1), got {} and {}",
         options_.ema_decay(), options_.usage_decay());
  if (options_.kmeans_iters() < 0)
    fail("vq::VectorQuantizer", "expected kmeans_iters >= 0, got {}", options_.kmeans_iters());

  const int64_t lookup = options_.lookup_dim() > 0 ? options_.lookup_dim() : d;
  embedding = register_module("embedding", torch::nn::Embedding(k, lookup));
  {
    torch::NoGradGuard no_grad;
    embedding->weight.uniform_(-1.0 / static_cast<double>(k), 1.0 / static_cast<double>(k));
  }
  if (options_.lookup_dim() > 0) {
    project_in = register_module("project_in", torch::nn::Linear(d, lookup));
    project_out = register_module("project_out", torch::nn::Linear(lookup, d));
  }
  if (options_.use_ema()) {
    // The codebook moves by EMA only. The state starts consistent (codebook = sum / size): every
    // code holds one pseudo-assignment at its initial value. Sonnet v1 / VQ-VAE-2's zero sizes
    // without debiasing would scale unused codes by ~1/epsilon on the first step.
    embedding->weight.set_requires_grad(false);
    ema_cluster_size_ = register_buffer("ema_cluster_size", torch::ones({k}));
    ema_embed_sum_ = register_buffer("ema_embed_sum", embedding->weight.detach().clone());
  }
  if (options_.dead_code_restart()) usage_ = register_buffer("usage", torch::ones({k}));
  if (options_.kmeans_init())
    initialized_ = register_buffer("initialized", torch::zeros({}, torch::kBool));
}

torch::Tensor VectorQuantizerImpl::codebook() const {
  const auto& weight = embedding->weight;
  return options_.l2_normalize() ? l2_rows(weight) : weight;
}

torch::Tensor VectorQuantizerImpl::nearest_in(const torch::Tensor& x,
                                              const torch::Tensor& codes) const {
  return nearest_code(x, codes, options_.chunk_size());  // [M]
}

torch::Tensor VectorQuantizerImpl::nearest(const torch::Tensor& z_flat) {
  torch::NoGradGuard no_grad;
  const int64_t dim = embedding->weight.size(1);
  if (z_flat.dim() != 2 || z_flat.size(1) != dim)
    fail("vq::nearest", "expected [M, {}], got {}", dim, shape_str(z_flat.sizes()));
  auto x = z_flat.to(embedding->weight.scalar_type());
  if (options_.l2_normalize()) x = l2_rows(x);
  return nearest_in(x, codebook());
}

void VectorQuantizerImpl::init_from_kmeans(const torch::Tensor& local) {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.num_codes();
  // Data-parallel training: the rows of every process; rank 0's centres are then everyone's.
  const torch::Tensor x = all_gather_rows(local.contiguous());
  auto centres = kmeans_pp_seeds(x, k);  // [K, D']; then Lloyd's algorithm
  for (int64_t it = 0; it < options_.kmeans_iters(); ++it) {
    auto assign = nearest_in(x, centres);                              // [M]
    auto counts = torch::bincount(assign, {}, k).to(x.scalar_type());  // [K]
    auto sums = torch::zeros_like(centres).index_add_(0, assign, x);   // [K, D']
    auto updated = sums / counts.clamp_min(1).unsqueeze(1);
    if (options_.l2_normalize()) updated = l2_rows(updated);              // spherical k-means
    centres = torch::where((counts > 0).unsqueeze(1), updated, centres);  // empty: keep centre
  }
  centres = centres.contiguous();
  broadcast_from(centres, 0);
  embedding->weight.data().copy_(centres);
  if (options_.use_ema()) {
    ema_cluster_size_.fill_(1);
    ema_embed_sum_.copy_(centres);
  }
  if (usage_.defined()) usage_.fill_(1);
  initialized_.fill_(true);
}

int64_t VectorQuantizerImpl::update_codebook(const torch::Tensor& x, const torch::Tensor& indices,
                                             const torch::Tensor& counts, int64_t m) {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.num_codes();
  // .data(): in-place edits that autograd does not version-check; the graph of this step only
  // saved rows of codes that were assigned, and those are left as they are below.
  auto weight = embedding->weight.data();
  auto counts_f = counts.to(x.scalar_type());  // [K]
  if (options_.use_ema()) {
    const double decay = options_.ema_decay(), eps = options_.ema_epsilon();
    auto sums = torch::zeros_like(ema_embed_sum_).index_add_(0, indices, x);  // [K, D']
    all_reduce_sum(sums);  // every process's rows: the EMA statistics are global
    ema_cluster_size_.mul_(decay).add_(counts_f, 1 - decay);
    ema_embed_sum_.mul_(decay).add_(sums, 1 - decay);
    auto total = ema_cluster_size_.sum();
    auto smoothed = (ema_cluster_size_ + eps) / (total + static_cast<double>(k) * eps) * total;
    weight.copy_(ema_embed_sum_ / smoothed.unsqueeze(1));
  }

  // Without dead_code_restart the usage EMA is only for statistics and is not saved.
  if (!options_.dead_code_restart() && (!usage_.defined() || usage_.device() != x.device()))
    usage_ = torch::ones({k}, x.options());
  const double usage_decay = options_.usage_decay();
  usage_.mul_(usage_decay)
      .add_(counts_f * (static_cast<double>(k) / std::max<int64_t>(m, 1)), 1 - usage_decay);
  if (!options_.dead_code_restart() || m == 0) return 0;

  // Dead: rarely used of late and unused in this batch (so this step's gradients are unaffected).
  auto dead = ((usage_ < options_.dead_code_threshold()) & (counts == 0)).nonzero().squeeze(1);
  const int64_t restarted = dead.numel();
  if (restarted == 0) return 0;
  // Data-parallel: drawn from every process's rows (rank 0's draw is sent to all below).
  const torch::Tensor rows = all_gather_rows(x.contiguous());
  auto seeds = rows.index_select(0, random_rows(rows.size(0), restarted, x.device()));  // [R, D']
  seeds = seeds + torch::randn_like(seeds) * (1e-2 * rows.std());  // apart when rows repeat
  if (options_.l2_normalize()) seeds = l2_rows(seeds);
  seeds = seeds.contiguous();
  broadcast_from(seeds, 0);  // data-parallel: rank 0's draw restarts the codes everywhere
  weight.index_copy_(0, dead, seeds);
  usage_.index_fill_(0, dead, 1.0);
  if (options_.use_ema()) {
    ema_cluster_size_.index_fill_(0, dead, 1.0);
    ema_embed_sum_.index_copy_(0, dead, seeds);
  }
  return restarted;
}

// z: [N, D, H, W] -> z_q [N, D, H, W], indices [N, H, W]
std::map<std::string, double> QuantizerOutput::logs() const {
  const auto value = [](const torch::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
  return {{"loss_vq", value(loss)},
          {"loss_codebook", value(loss_codebook)},
          {"loss_commit", value(loss_commit)},
          {"vq_usage", stats.usage_fraction},
          {"vq_perplexity", stats.perplexity},
          {"vq_entropy", stats.entropy},
          {"vq_dead_codes", static_cast<double>(stats.dead_codes)},
          {"vq_restarted", static_cast<double>(stats.restarted_codes)}};
}

QuantizerOutput VectorQuantizerImpl::forward_frozen(const torch::Tensor& z) {
  const bool was_training = is_training();
  eval();
  QuantizerOutput out;
  try {
    out = forward(z);
  } catch (...) {
    train(was_training);
    throw;
  }
  train(was_training);
  return out;
}

QuantizerOutput VectorQuantizerImpl::forward(const torch::Tensor& z) {
  const int64_t dim = options_.code_dim(), k = options_.num_codes();
  if (z.dim() != 4 || z.size(1) != dim)
    fail("vq::forward", "expected [N, {}, H, W], got {}", dim, shape_str(z.sizes()));
  const int64_t n = z.size(0), h = z.size(2), w = z.size(3);
  auto z_flat = z.permute({0, 2, 3, 1}).reshape({-1, dim}).to(embedding->weight.scalar_type());
  auto x = project_in ? project_in(z_flat) : z_flat;  // [M, D'] lookup space
  if (options_.l2_normalize()) x = l2_rows(x);
  const bool training = is_training();
  if (training && options_.kmeans_init() && !initialized_.item<bool>())
    init_from_kmeans(x.detach());

  auto codes = codebook();                                // [K, D']
  auto indices = nearest_in(x.detach(), codes.detach());  // [M]
  auto q = codes.index_select(0, indices);                // [M, D']

  QuantizerOutput out;
  out.loss_codebook = (q - x.detach()).pow(2).mean();
  out.loss_commit = (x - q.detach()).pow(2).mean();
  const double beta = options_.beta();
  if (options_.use_ema())
    out.loss = beta * out.loss_commit;  // the codebook follows the EMA instead
  else if (options_.legacy_beta())
    out.loss = beta * out.loss_codebook + out.loss_commit;  // taming-transformers' placement
  else
    out.loss = out.loss_codebook + beta * out.loss_commit;

  auto st = x + (q - x).detach();               // straight-through: d z_q / d x = I
  auto y = project_out ? project_out(st) : st;  // [M, D]
  out.z_q = y.view({n, h, w, dim}).permute({0, 3, 1, 2}).contiguous().to(z.scalar_type());
  out.indices = indices.view({n, h, w});

  auto counts = torch::bincount(indices, {}, k);  // [K]
  int64_t rows = indices.numel();
  if (training && collective_world_size() > 1) {
    // Data-parallel training: usage, dead codes and statistics over every process's batch.
    auto rows_t = torch::full({1}, rows, counts.options());
    all_reduce_sum(counts);
    all_reduce_sum(rows_t);
    rows = rows_t.item<int64_t>();
  }
  const int64_t restarted = training ? update_codebook(x.detach(), indices, counts, rows) : 0;
  out.stats = stats_from_counts(counts);
  out.stats.restarted_codes = restarted;
  if (training)
    out.stats.dead_codes = (usage_ < options_.dead_code_threshold()).sum().item<int64_t>();
  return out;
}

// indices [N, H, W] (int64) -> z_q [N, D, H, W]
torch::Tensor VectorQuantizerImpl::lookup(const torch::Tensor& indices) {
  const int64_t k = options_.num_codes();
  if (indices.scalar_type() != torch::kLong)
    fail("vq::lookup", "expected int64 indices, got {}",
         std::string(c10::toString(indices.scalar_type())));
  if (indices.dim() != 3)
    fail("vq::lookup", "expected indices [N, H, W], got {}", shape_str(indices.sizes()));
  if (indices.numel() > 0) {
    auto range = torch::stack({indices.min(), indices.max()}).cpu();
    const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
    if (lo < 0 || hi >= k)
      fail("vq::lookup", "indices out of range [0, {}): got min {}, max {}", k, lo, hi);
  }
  auto q = codebook().index_select(0, indices.reshape({-1}));  // [M, D']
  if (project_out) q = project_out(q);                         // [M, D]
  return q.view({indices.size(0), indices.size(1), indices.size(2), options_.code_dim()})
      .permute({0, 3, 1, 2})
      .contiguous();
}

CodebookStats VectorQuantizerImpl::stats_from_counts(const torch::Tensor& counts) {
  torch::NoGradGuard no_grad;
  if (counts.dim() != 1 || counts.numel() == 0)
    fail("vq::stats_from_counts", "expected counts [K], got {}", shape_str(counts.sizes()));
  auto c = counts.to(torch::kDouble);
  auto p = c / c.sum().clamp_min(std::numeric_limits<double>::min());  // all-zero counts: p = 0
  auto used = (c > 0).sum().to(torch::kDouble) / static_cast<double>(c.numel());
  auto entropy = -torch::xlogy(p, p).sum();
  auto packed = torch::stack({used, entropy}).cpu();  // one device sync
  CodebookStats stats;
  stats.usage_fraction = packed[0].item<double>();
  stats.entropy = packed[1].item<double>();
  stats.perplexity = std::exp(stats.entropy);
  return stats;
}

int64_t codebook_size(const torch::nn::Module& model) {
  if (const auto* vq = dynamic_cast<const VectorQuantizerImpl*>(&model))
    return vq->options().num_codes();
  for (const auto& m : model.modules(/*include_self=*/false))
    if (const auto* vq = dynamic_cast<const VectorQuantizerImpl*>(m.get()))
      return vq->options().num_codes();
  return 0;
}

}  // namespace lf
