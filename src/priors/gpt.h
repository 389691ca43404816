// The transformer prior (minGPT as in taming-transformers: token + learned position embeddings,
// pre-LN blocks of causal self-attention and a GELU MLP, final LayerNorm, linear head) over the
// flattened code map, after a prefix of one start token (the class, or a start-of-sequence token)
// and, for image conditioning, the condition image's codes. Samples with temperature, top-k, top-p,
// a KV cache, and a sliding window for grids larger than the training grid.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "priors/prior.h"

namespace lf {

struct GPTOptions {
  TORCH_ARG(int64_t, num_codes) = 256;  // K, the first stage's codebook size
  TORCH_ARG(std::vector<int64_t>, grid) = std::vector<int64_t>{7, 7};  // training code grid [h, w]
  TORCH_ARG(int64_t, num_classes) = 0;     // > 0: the start token is the class (class-conditional)
  TORCH_ARG(int64_t, cond_num_codes) = 0;  // > 0: condition image codes are prefixed
  TORCH_ARG(std::vector<int64_t>, cond_grid) = std::vector<int64_t>{};  // their grid [hc, wc]
  TORCH_ARG(int64_t, block_size) = 0;  // context length; 0 = what the grids need
  TORCH_ARG(int64_t, n_layer) = 6;
  TORCH_ARG(int64_t, n_head) = 6;
  TORCH_ARG(int64_t, n_embd) = 192;
  TORCH_ARG(double, embd_pdrop) = 0.0;
  TORCH_ARG(double, resid_pdrop) = 0.0;
  TORCH_ARG(double, attn_pdrop) = 0.0;
};
void to_json(Json& json, const GPTOptions& options);
void from_json(const Json& json, GPTOptions& options);  // present keys only; unknown keys throw

// Presets: "fashion" (4 layers, 4 heads, 128 wide, dropout 0.1: ~0.85 M parameters, for the 7x7 or
// 8x8 code maps of the Fashion-MNIST first stages).
GPTOptions gpt_preset(const std::string& name);
std::vector<std::string> gpt_preset_names();

// Keys and values of every layer for the positions seen so far ([N, heads, L, head_dim] each).
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() ? 0 : keys[0].size(2); }
};

// minGPT's CausalSelfAttention: key, query, value, proj (taming's names).
class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(int64_t n_embd, int64_t n_head, double attn_pdrop, double resid_pdrop);
  // x: [N, T, C] -> [N, T, C]. With a cache, x holds the T positions after the cached ones (which
  // it extends); position t sees the cached positions and positions <= t.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* past_key = nullptr,
                        torch::Tensor* past_value = nullptr);

  torch::nn::Linear key{nullptr}, query{nullptr}, value{nullptr}, proj{nullptr};

 private:
  int64_t n_head_;
  double attn_pdrop_, resid_pdrop_;
};
TORCH_MODULE(CausalSelfAttention);

// Pre-LN block: x + attn(ln1(x)), then + mlp(ln2(x)); mlp = Linear(4C), GELU, Linear(C), Dropout.
class GPTBlockImpl : public torch::nn::Module {
 public:
  GPTBlockImpl(int64_t n_embd, int64_t n_head, double attn_pdrop, double resid_pdrop);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* past_key = nullptr,
                        torch::Tensor* past_value = nullptr);

  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  CausalSelfAttention attn{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(GPTBlock);

class GPTImpl : public PriorImpl {
 public:
  explicit GPTImpl(GPTOptions options = {});

  std::string kind() const override { return "gpt"; }
  Json options_json() const override;
  int64_t num_codes() const override { return options_.num_codes(); }
  int64_t num_classes() const override { return options_.num_classes(); }
  std::vector<int64_t> grid() const override { return options_.grid(); }
  std::vector<int64_t> cond_grid() const override { return options_.cond_grid(); }
  int64_t cond_num_codes() const override { return options_.cond_num_codes(); }
  const GPTOptions& options() const { return options_; }

  // Vocabulary: codes [0, K), start tokens [K, K + S) (S = classes, or 1), condition codes after.
  int64_t vocab_size() const;
  int64_t block_size() const { return block_size_; }
  int64_t cond_length() const;  // hc * wc, 0 without image conditioning

  // tokens: [N, T] vocabulary ids at `positions` [T] int64 (< block_size) -> logits [N, T, K] for
  // the code after each token. With a cache: the tokens follow the cached ones and extend it.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions,
                        KVCache* cache = nullptr);
  // The first token of every sequence: [N, 1], the class (labels [N]) or start-of-sequence.
  torch::Tensor start_tokens(int64_t n, const torch::Tensor& labels) const;
  // The prefix of every sequence: [N, 1 + hc*wc] (start token, condition codes).
  torch::Tensor prefix_tokens(int64_t n, const PriorCondition& cond) const;

  torch::Tensor logits(const torch::Tensor& codes, const PriorCondition& cond) override;
  torch::Tensor sample(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                       const SamplingOptions& options, at::Generator& generator) override;

  torch::nn::Embedding tok_emb{nullptr};
  torch::Tensor pos_emb;  // [1, block_size, n_embd]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  // The training grid: all positions in one sequence, with or without the KV cache.
  torch::Tensor sample_full(int64_t n, const PriorCondition& cond, const SamplingOptions& options,
                            at::Generator& generator);
  // Any grid at least as large as the training grid: one window per position.
  torch::Tensor sample_windowed(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                                const SamplingOptions& options, at::Generator& generator);

  GPTOptions options_;
  int64_t block_size_ = 0;
};
TORCH_MODULE(GPT);

}  // namespace lf
