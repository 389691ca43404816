// minGPT prior: embeddings, causal blocks with a KV cache, teacher-forced logits and samplers.
#include "priors/gpt.h"

#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"
#include "io/option_reader.h"
#include "models/batched_matmul.h"
#include "priors/sliding_window.h"

namespace lf {

namespace F = torch::nn::functional;

void to_json(Json& json, const GPTOptions& o) {
  json = Json{{"num_codes", o.num_codes()},     {"grid", o.grid()},
              {"num_classes", o.num_classes()}, {"cond_num_codes", o.cond_num_codes()},
              {"cond_grid", o.cond_grid()},     {"block_size", o.block_size()},
              {"n_layer", o.n_layer()},         {"n_head", o.n_head()},
              {"n_embd", o.n_embd()},           {"embd_pdrop", o.embd_pdrop()},
              {"resid_pdrop", o.resid_pdrop()}, {"attn_pdrop", o.attn_pdrop()}};
}

void from_json(const Json& json, GPTOptions& o) {
  OptionReader read(json, "gpt options");
  read("num_codes", o.num_codes())("grid", o.grid())("num_classes", o.num_classes());
  read("cond_num_codes", o.cond_num_codes())("cond_grid", o.cond_grid());
  read("block_size", o.block_size())("n_layer", o.n_layer())("n_head", o.n_head());
  read("n_embd", o.n_embd())("embd_pdrop", o.embd_pdrop())("resid_pdrop", o.resid_pdrop());
  read("attn_pdrop", o.attn_pdrop());
  read.finish();
}

GPTOptions gpt_preset(const std::string& name) {
  // Sized for a 2-core CPU: ~0.85 M parameters, 2000 steps of 64 code maps in ~25 minutes.
  if (name == "fashion")
    return GPTOptions()
        .n_layer(4)
        .n_head(4)
        .n_embd(128)
        .embd_pdrop(0.1)
        .resid_pdrop(0.1)
        .attn_pdrop(0.1);
  fail("gpt_preset", "unknown preset '{}' (known: {})", name, fmt::join(gpt_preset_names(), ", "));
}

std::vector<std::string> gpt_preset_names() {
  return {"fashion"};
}

// ---- blocks -------------------------------------------------------------------------------------

CausalSelfAttentionImpl::CausalSelfAttentionImpl(int64_t n_embd, int64_t n_head, double attn_pdrop,
                                                 double resid_pdrop)
    : n_head_(n_head), attn_pdrop_(attn_pdrop), resid_pdrop_(resid_pdrop) {
  key = register_module("key", torch::nn::Linear(n_embd, n_embd));
  query = register_module("query", torch::nn::Linear(n_embd, n_embd));
  value = register_module("value", torch::nn::Linear(n_embd, n_embd));
  proj = register_module("proj", torch::nn::Linear(n_embd, n_embd));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* past_key,
                                               torch::Tensor* past_value) {
  const int64_t n = x.size(0), t = x.size(1), c = x.size(2), d = c / n_head_;
  const auto heads = [&](const torch::Tensor& y) {  // [N, T, C] -> [N, heads, T, d]
    return y.view({n, t, n_head_, d}).transpose(1, 2);
  };
  auto k = heads(key(x)), q = heads(query(x)), v = heads(value(x));
  if (past_key && past_key->defined()) {
    k = torch::cat({*past_key, k}, 2);
    v = torch::cat({*past_value, v}, 2);
  }
  if (past_key) {
    *past_key = k;
    *past_value = v;
  }
  const int64_t lk = k.size(2);
  auto att = batched_matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(d)));
  if (t > 1) {  // query t (absolute lk - T + t) sees keys <= its own position
    const auto future = torch::ones({t, lk}, x.options().dtype(torch::kBool)).triu(lk - t + 1);
    att = att.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  att = F::dropout(torch::softmax(att, -1),
                   F::DropoutFuncOptions().p(attn_pdrop_).training(is_training()));
  const auto y = batched_matmul(att, v).transpose(1, 2).contiguous().view({n, t, c});
  return F::dropout(proj(y), F::DropoutFuncOptions().p(resid_pdrop_).training(is_training()));
}

GPTBlockImpl::GPTBlockImpl(int64_t n_embd, int64_t n_head, double attn_pdrop, double resid_pdrop) {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({n_embd})));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({n_embd})));
  attn = register_module("attn", CausalSelfAttention(n_embd, n_head, attn_pdrop, resid_pdrop));
  mlp = register_module(
      "mlp", torch::nn::Sequential(torch::nn::Linear(n_embd, 4 * n_embd), torch::nn::GELU(),
                                   torch::nn::Linear(4 * n_embd, n_embd),
                                   torch::nn::Dropout(resid_pdrop)));
}

torch::Tensor GPTBlockImpl::forward(const torch::Tensor& x, torch::Tensor* past_key,
                                    torch::Tensor* past_value) {
  auto y = x + attn->forward(ln1(x), past_key, past_value);
  return y + mlp->forward(ln2(y));
}

// ---- GPT ----------------------------------------------------------------------------------------

GPTImpl::GPTImpl(GPTOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  const auto grid_ok = [](const std::vector<int64_t>& g) {
    return g.size() == 2 && g[0] > 0 && g[1] > 0;
  };
  if (o.num_codes() <= 0 || !grid_ok(o.grid()) || o.num_classes() < 0 || o.cond_num_codes() < 0)
    fail("gpt",
         "expected num_codes > 0, grid [h, w] > 0, num_classes >= 0, cond_num_codes >= 0, "
         "got {}, {}, {}, {}",
         o.num_codes(), o.grid(), o.num_classes(), o.cond_num_codes());
  if (o.cond_num_codes() > 0 && !grid_ok(o.cond_grid()))
    fail("gpt", "cond_grid: expected [hc, wc] > 0 with cond_num_codes > 0, got {}", o.cond_grid());
  if (o.n_layer() <= 0 || o.n_head() <= 0 || o.n_embd() <= 0 || o.n_embd() % o.n_head() != 0)
    fail("gpt",
         "expected n_layer, n_head, n_embd > 0 with n_embd divisible by n_head, got {}, {}, "
         "{}",
         o.n_layer(), o.n_head(), o.n_embd());
  for (double p : {o.embd_pdrop(), o.resid_pdrop(), o.attn_pdrop()})
    if (p < 0 || p >= 1) fail("gpt", "dropout probabilities: expected in [0, 1), got {}", p);
  const int64_t needed = cond_length() + o.grid()[0] * o.grid()[1];  // start + cond + codes - 1
  block_size_ = o.block_size() > 0 ? o.block_size() : needed;
  if (block_size_ < needed)
    fail("gpt", "block_size {} is shorter than the {} positions the grids need (1 + {} + {} - 1)",
         block_size_, needed, cond_length(), o.grid()[0] * o.grid()[1]);

  tok_emb = register_module("tok_emb", torch::nn::Embedding(vocab_size(), o.n_embd()));
  pos_emb = register_parameter("pos_emb", torch::zeros({1, block_size_, o.n_embd()}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.n_layer(); ++i)
    blocks->push_back(GPTBlock(o.n_embd(), o.n_head(), o.attn_pdrop(), o.resid_pdrop()));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.n_embd()})));
  head = register_module(
      "head", torch::nn::Linear(torch::nn::LinearOptions(o.n_embd(), o.num_codes()).bias(false)));

  // minGPT's init: N(0, 0.02) for linear and embedding weights, zero biases, LayerNorm (1, 0).
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = module->as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, 0.02);
    }
  }
}

Json GPTImpl::options_json() const {
  return options_;
}

int64_t GPTImpl::vocab_size() const {
  return options_.num_codes() + std::max<int64_t>(options_.num_classes(), 1) +
         options_.cond_num_codes();
}

int64_t GPTImpl::cond_length() const {
  return options_.cond_num_codes() > 0 ? options_.cond_grid()[0] * options_.cond_grid()[1] : 0;
}

torch::Tensor GPTImpl::forward(const torch::Tensor& tokens, const torch::Tensor& positions,
                               KVCache* cache) {
  if (tokens.dim() != 2 || positions.dim() != 1 || positions.size(0) != tokens.size(1))
    fail("gpt::forward", "expected tokens [N, T] and positions [T], got {} and {}",
         shape_str(tokens.sizes()), shape_str(positions.sizes()));
  if (positions.numel() > 0 && positions.max().item<int64_t>() >= block_size_)
    fail("gpt::forward", "position {} is beyond block_size {}", positions.max().item<int64_t>(),
         block_size_);
  auto x = tok_emb(tokens) + pos_emb.index_select(1, positions.to(pos_emb.device()));
  x = F::dropout(x, F::DropoutFuncOptions().p(options_.embd_pdrop()).training(is_training()));
  if (cache && cache->keys.empty()) {
    cache->keys.resize(blocks->size());
    cache->values.resize(blocks->size());
  }
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto block = blocks->ptr<GPTBlockImpl>(i);
    x = cache ? block->forward(x, &cache->keys[i], &cache->values[i]) : block->forward(x);
  }
  return head(ln_f(x));  // [N, T, K]
}

torch::Tensor GPTImpl::start_tokens(int64_t n, const torch::Tensor& labels) const {
  const auto device = pos_emb.device();
  const int64_t k = options_.num_codes();
  return options_.num_classes() > 0
             ? labels.to(device).view({n, 1}) + k
             : torch::full({n, 1}, k, torch::TensorOptions(torch::kInt64).device(device));
}

torch::Tensor GPTImpl::prefix_tokens(int64_t n, const PriorCondition& cond) const {
  const auto device = pos_emb.device();
  const int64_t k = options_.num_codes();
  const auto start = start_tokens(n, cond.labels);
  if (options_.cond_num_codes() == 0) return start;
  const int64_t cond_offset = k + std::max<int64_t>(options_.num_classes(), 1);
  return torch::cat({start, cond.cond_codes.to(device).reshape({n, -1}) + cond_offset}, 1);
}

torch::Tensor GPTImpl::logits(const torch::Tensor& codes, const PriorCondition& cond) {
  check_inputs(codes, cond, "gpt::logits");
  const auto& g = options_.grid();
  if (codes.size(1) != g[0] || codes.size(2) != g[1])
    fail("gpt::logits", "codes: expected the training grid {}x{}, got {}x{}", g[0], g[1],
         codes.size(1), codes.size(2));
  if (cond_num_codes() > 0 && (cond.cond_codes.size(1) != options_.cond_grid()[0] ||
                               cond.cond_codes.size(2) != options_.cond_grid()[1]))
    fail("gpt::logits", "cond_codes: expected the grid {}, got {}", options_.cond_grid(),
         shape_str(cond.cond_codes.sizes()));
  const int64_t n = codes.size(0), length = g[0] * g[1];
  const auto flat = codes.reshape({n, length});
  // [start, cond..., z_0 .. z_{L-2}]: the output at the token before z_m predicts z_m.
  const auto tokens = torch::cat({prefix_tokens(n, cond), flat.slice(1, 0, length - 1)}, 1);
  const auto positions =
      torch::arange(tokens.size(1), torch::TensorOptions(torch::kInt64).device(tokens.device()));
  const auto out = forward(tokens, positions).slice(1, cond_length(), cond_length() + length);
  return out.permute({0, 2, 1}).reshape({n, options_.num_codes(), g[0], g[1]});
}

torch::Tensor GPTImpl::sample(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                              const SamplingOptions& options, at::Generator& generator) {
  options.validate("gpt::sample");
  const auto& g = options_.grid();
  if (n < 1 || h < g[0] || w < g[1])
    fail("gpt::sample",
         "expected n >= 1 and a grid of at least the training grid {}x{}, got n={}, "
         "{}x{}",
         g[0], g[1], n, h, w);
  const auto device = pos_emb.device();
  // Check the condition with a placeholder code map of the right batch size.
  check_inputs(torch::zeros({n, 0, 0}, torch::kInt64), cond, "gpt::sample");
  if (cond_num_codes() > 0) {
    const auto& cg = options_.cond_grid();
    const bool trained_size = cond.cond_codes.size(1) == cg[0] && cond.cond_codes.size(2) == cg[1];
    const bool windowed = h != g[0] || w != g[1] || (options.window_h && options.window_h != g[0]);
    if (!windowed && !trained_size)
      fail("gpt::sample", "cond_codes: expected the training condition grid {}x{}, got {}x{}",
           cg[0], cg[1], cond.cond_codes.size(1), cond.cond_codes.size(2));
    if (windowed && (cg != g || cond.cond_codes.size(1) != h || cond.cond_codes.size(2) != w))
      fail("gpt::sample",
           "windowed conditional sampling needs the condition grid to match the code "
           "grid (training {}x{} vs {}x{}; asked {}x{} vs {}x{})",
           cg[0], cg[1], g[0], g[1], cond.cond_codes.size(1), cond.cond_codes.size(2), h, w);
  }
  if (options.window_w != 0 && options.window_w != g[1])
    fail("gpt::sample",
         "window width: expected the training grid width {} (rows wrap as in "
         "training), got {}",
         g[1], options.window_w);
  if (options.window_h > g[0])
    fail("gpt::sample", "window height: expected at most the training grid height {}, got {}", g[0],
         options.window_h);
  options.check_given(n, h, w, options_.num_codes(), "gpt::sample");
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  auto codes = (h == g[0] && w == g[1] && (options.window_h == 0 || options.window_h == g[0]))
                   ? sample_full(n, cond, options, generator)
                   : sample_windowed(n, h, w, cond, options, generator);
  train(was_training);
  return codes.to(device);
}

torch::Tensor GPTImpl::sample_full(int64_t n, const PriorCondition& cond,
                                   const SamplingOptions& options, at::Generator& generator) {
  const auto& g = options_.grid();
  const int64_t length = g[0] * g[1];
  const auto long_options = torch::TensorOptions(torch::kInt64).device(pos_emb.device());
  auto tokens = prefix_tokens(n, cond);  // grows by one code per step
  KVCache cache;
  torch::Tensor logits;
  for (int64_t m = 0; m < length; ++m) {
    if (options.kv_cache) {
      // First step: the whole prefix fills the cache; then one new token at a time.
      const int64_t start = m == 0 ? 0 : tokens.size(1) - 1;
      logits = forward(tokens.slice(1, start), torch::arange(start, tokens.size(1), long_options),
                       &cache);
    } else {
      logits = forward(tokens, torch::arange(tokens.size(1), long_options));
    }
    const auto next = options.cell_tokens([&] { return logits.select(1, -1); }, m, g[1], generator)
                          .to(tokens.device())
                          .expand({n});
    tokens = torch::cat({tokens, next.reshape({n, 1})}, 1);
    options.report(
        [&] {
          auto so_far = torch::full({n, length}, -1, long_options);
          so_far.slice(1, 0, m + 1).copy_(tokens.slice(1, tokens.size(1) - m - 1));
          return so_far.view({n, g[0], g[1]});
        },
        m + 1, length);
  }
  return tokens.slice(1, tokens.size(1) - length).reshape({n, g[0], g[1]});
}

torch::Tensor GPTImpl::sample_windowed(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                                       const SamplingOptions& options, at::Generator& generator) {
  const auto& g = options_.grid();
  const int64_t wh = options.window_h > 0 ? options.window_h : g[0], ww = g[1];
  const auto device = pos_emb.device();
  const auto long_options = torch::TensorOptions(torch::kInt64).device(device);
  const int64_t lc = cond_length();
  const auto start = start_tokens(n, cond.labels);  // [N, 1]
  const int64_t cond_offset = options_.num_codes() + std::max<int64_t>(options_.num_classes(), 1);
  const auto cond_codes = lc > 0 ? cond.cond_codes.to(device) : torch::Tensor();

  const WindowLogits next_logits = [&](const torch::Tensor& context, const Window& win) {
    // Positions as in training: rows of the window keep the training row length, so a cell (r, c)
    // of the window sits where cell (r, c) of the training grid did.
    std::vector<torch::Tensor> parts{start};
    std::vector<torch::Tensor> positions{torch::zeros({1}, long_options)};
    if (lc > 0) {
      const auto crop = cond_codes.slice(1, win.top, win.top + win.height)
                            .slice(2, win.left, win.left + win.width)
                            .reshape({n, -1});
      parts.push_back(crop + cond_offset);
      positions.push_back(torch::arange(1, 1 + crop.size(1), long_options));
    }
    parts.push_back(context);
    positions.push_back(torch::arange(1 + lc, 1 + lc + context.size(1), long_options));
    // The token before the target predicts it: drop nothing, read the last output.
    const auto out = forward(torch::cat(parts, 1), torch::cat(positions));
    return out.select(1, -1);
  };
  return sample_with_window(n, h, w, wh, ww, next_logits, options, generator, device);
}

}  // namespace lf
