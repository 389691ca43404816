// The vector quantizer shared by VQ-VAE and VQGAN: nearest-code lookup without an N x K x D
// tensor, straight-through gradients, codebook/commitment losses with beta placed explicitly,
// optional EMA codebook, k-means initialisation, dead-code restart, l2-normalised and
// low-dimensional lookup, and codebook statistics.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace lf {

struct VectorQuantizerOptions {
  VectorQuantizerOptions(int64_t num_codes, int64_t code_dim)
      : num_codes_(num_codes), code_dim_(code_dim) {}
  TORCH_ARG(int64_t, num_codes);         // K (taming: n_embed)
  TORCH_ARG(int64_t, code_dim);          // D, channels of z (taming: embed_dim)
  TORCH_ARG(double, beta) = 0.25;        // weight of the commitment term ||z_e - sg(z_q)||^2
  TORCH_ARG(bool, legacy_beta) = false;  // taming's placement: beta on the codebook term instead
  TORCH_ARG(bool, use_ema) = false;  // codebook follows an EMA of assigned z_e (no codebook loss)
  TORCH_ARG(double, ema_decay) = 0.99;
  TORCH_ARG(double, ema_epsilon) = 1e-5;  // Laplace smoothing of the EMA cluster sizes
  TORCH_ARG(bool,
            kmeans_init) = false;  // initialise the codebook by k-means on the first batch(es)
  TORCH_ARG(int64_t, kmeans_iters) = 10;
  TORCH_ARG(bool, dead_code_restart) = false;  // re-seed unused codes from recent encoder outputs
  TORCH_ARG(double, dead_code_threshold) =
      1e-3;  // a code whose usage EMA (share of assignments x K) falls below this is dead
  TORCH_ARG(double, usage_decay) = 0.99;  // EMA decay of per-code usage (dead-code detection)
  TORCH_ARG(bool, l2_normalize) = false;  // cosine lookup: z and codes l2-normalised
  TORCH_ARG(int64_t, lookup_dim) = 0;  // > 0: project z to this dim for lookup (factorised codes)
  TORCH_ARG(int64_t, chunk_size) =
      0;  // rows of z per distance chunk; 0: as many as keep the [rows, K] buffer <= 32 MB
};

struct CodebookStats {
  double usage_fraction = 0;    // share of codes used at least once in the batch
  double entropy = 0;           // -sum p log p of code frequencies in the batch (nats)
  double perplexity = 0;        // exp(entropy)
  int64_t dead_codes = 0;       // codes whose usage EMA is below the threshold
  int64_t restarted_codes = 0;  // codes re-seeded in this step
};

struct QuantizerOutput {
  torch::Tensor z_q;            // [N, D, H, W] straight-through: z_e + sg(z_q - z_e)
  torch::Tensor loss;           // scalar: codebook + commitment terms, weighted
  torch::Tensor loss_codebook;  // scalar: ||sg(z_e) - z_q||^2 (unweighted mean)
  torch::Tensor loss_commit;    // scalar: ||z_e - sg(z_q)||^2 (unweighted mean)
  torch::Tensor indices;        // [N, H, W] int64
  CodebookStats stats;

  // The training-log entries of every VQ model: loss_vq (the weighted loss), loss_codebook,
  // loss_commit (unweighted; 0 when a term is absent, e.g. the codebook term with EMA) and the
  // codebook statistics vq_usage, vq_perplexity, vq_entropy, vq_dead_codes, vq_restarted.
  std::map<std::string, double> logs() const;
};

class VectorQuantizerImpl : public torch::nn::Module {
 public:
  explicit VectorQuantizerImpl(VectorQuantizerOptions options);

  // z: [N, D, H, W] -> z_q [N, D, H, W], indices [N, H, W]. In training mode also updates EMA,
  // k-means init, usage statistics and dead-code restart.
  QuantizerOutput forward(const torch::Tensor& z);
  // forward() in eval mode whatever the module's mode: no EMA, k-means, usage or restart side
  // effects (encoding for inference). The mode is restored, also when forward throws.
  QuantizerOutput forward_frozen(const torch::Tensor& z);
  // indices [N, H, W] (int64) -> z_q [N, D, H, W]
  torch::Tensor lookup(const torch::Tensor& indices);
  // z_flat [M, D'] (D' = lookup_dim or D: vectors already in lookup space) -> nearest code index
  // [M] int64, computed in chunks of chunk_size rows; cosine when l2_normalize.
  torch::Tensor nearest(const torch::Tensor& z_flat);
  // Statistics of a histogram of code counts [K].
  static CodebookStats stats_from_counts(const torch::Tensor& counts);

  const VectorQuantizerOptions& options() const { return options_; }
  torch::Tensor codebook() const;  // [K, D'] as used for lookup (l2-normalised when l2_normalize)

  torch::nn::Embedding embedding{nullptr};  // "embedding.weight" [K, D or lookup_dim]: taming's key

 private:
  // x: [M, D'] -> [M] nearest rows of codes [K, D'] (both already normalised if needed).
  torch::Tensor nearest_in(const torch::Tensor& x, const torch::Tensor& codes) const;
  // x: [M, D'] lookup-space vectors (this process's; data-parallel runs gather every process's)
  void init_from_kmeans(const torch::Tensor& x);
  // EMA, usage and dead-code restart after one training batch; returns codes re-seeded. counts and
  // rows are over every process of a data-parallel run (core/collectives.h), x and indices this
  // process's.
  int64_t update_codebook(const torch::Tensor& x, const torch::Tensor& indices,
                          const torch::Tensor& counts, int64_t rows);

  VectorQuantizerOptions options_;
  torch::nn::Linear project_in{nullptr}, project_out{nullptr};  // only with lookup_dim > 0
  torch::Tensor ema_cluster_size_;  // [K] buffer "ema_cluster_size" (use_ema)
  torch::Tensor ema_embed_sum_;     // [K, D'] buffer "ema_embed_sum" (use_ema)
  torch::Tensor usage_;             // [K] buffer "usage": EMA of assignment share x K
                                    // (dead_code_restart; otherwise kept unsaved, for stats)
  torch::Tensor initialized_;       // [] buffer "initialized" (kmeans_init)
};
TORCH_MODULE(VectorQuantizer);

// The codebook size K of the first vector quantizer inside `model`; 0 when it has none.
int64_t codebook_size(const torch::nn::Module& model);

}  // namespace lf
