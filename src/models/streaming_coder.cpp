// Exact streaming encode and decode over row bands: see streaming_coder.h.
#include "models/streaming_coder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <utility>

#include "core/allocator.h"
#include "core/error.h"
#include "core/mapped_tensor.h"
#include "models/batched_matmul.h"
#include "models/conv_algorithm.h"

namespace lf {
namespace {

constexpr const char* kStreaming = "streaming";

// ---- The networks as flat lists of steps --------------------------------------------------------

enum class StepKind { conv, resnet, attn, upsample, downsample, out };

// One step of the encoder or decoder in execution order. `out` is norm_out -> swish -> conv_out
// (-> tanh).
struct Step {
  StepKind kind;
  torch::nn::Conv2dImpl* conv = nullptr;     // conv, out
  torch::nn::GroupNormImpl* norm = nullptr;  // out
  LdmResnetBlockImpl* block = nullptr;
  LdmAttnBlockImpl* attn = nullptr;
  LdmUpsampleImpl* up = nullptr;
  LdmDownsampleImpl* down = nullptr;
  bool tanh = false;
};

Step conv_step(torch::nn::Conv2d& conv) {
  return {StepKind::conv, conv.get()};
}
Step resnet_step(LdmResnetBlock& b) {
  Step s{StepKind::resnet};
  s.block = b.get();
  return s;
}
Step attn_step(LdmAttnBlock& a) {
  Step s{StepKind::attn};
  s.attn = a.get();
  return s;
}
Step out_step(torch::nn::GroupNorm& norm, torch::nn::Conv2d& conv, bool tanh) {
  Step s{StepKind::out, conv.get(), norm.get()};
  s.tanh = tanh;
  return s;
}

void add_level(std::vector<Step>& steps, LdmLevelImpl& level) {
  for (size_t i = 0; i < level.blocks.size(); ++i) {
    steps.push_back(resnet_step(level.blocks[i]));
    if (!level.attns.empty()) steps.push_back(attn_step(level.attns[i]));
  }
}

void add_mid(std::vector<Step>& steps, LdmMidImpl& mid) {
  steps.push_back(resnet_step(mid.block_1));
  if (mid.attn_1) steps.push_back(attn_step(mid.attn_1));
  steps.push_back(resnet_step(mid.block_2));
}

std::vector<Step> decoder_steps(LdmDecoderImpl& d) {
  std::vector<Step> steps{conv_step(d.conv_in)};
  add_mid(steps, *d.mid);
  for (auto level = static_cast<int64_t>(d.up->size()) - 1; level >= 0; --level) {
    auto up = d.up->ptr<LdmLevelImpl>(level);
    add_level(steps, *up);
    if (up->upsample) {
      Step s{StepKind::upsample};
      s.up = up->upsample.get();
      steps.push_back(s);
    }
  }
  if (!d.options().give_pre_end())
    steps.push_back(out_step(d.norm_out, d.conv_out, d.options().tanh_out()));
  return steps;
}

std::vector<Step> encoder_steps(LdmEncoderImpl& e) {
  std::vector<Step> steps{conv_step(e.conv_in)};
  for (size_t level = 0; level < e.down->size(); ++level) {
    auto down = e.down->ptr<LdmLevelImpl>(level);
    add_level(steps, *down);
    if (down->downsample) {
      Step s{StepKind::downsample};
      s.down = down->downsample.get();
      steps.push_back(s);
    }
  }
  add_mid(steps, *e.mid);
  steps.push_back(out_step(e.norm_out, e.conv_out, false));
  return steps;
}

// Memory stays bounded only if a layer's cached Winograd weights (4x the weights) go once its
// step is done; the next call transforms them again (milliseconds per layer).
void release_caches(const Step& s) {
  if (s.conv) release_conv_cache(*s.conv);
  if (s.block) {
    release_conv_cache(*s.block->conv1);
    release_conv_cache(*s.block->conv2);
  }
}

int64_t conv_out_channels(const torch::nn::Conv2dImpl& conv) {
  return conv.weight.size(0);
}

// [channels, height, width] after a step, from [channels, height, width] before it.
std::array<int64_t, 3> step_shape(const Step& s, std::array<int64_t, 3> in) {
  switch (s.kind) {
    case StepKind::conv:
    case StepKind::out:
      return {conv_out_channels(*s.conv), in[1], in[2]};
    case StepKind::resnet:
      return {conv_out_channels(*s.block->conv2), in[1], in[2]};
    case StepKind::attn:
      return in;
    case StepKind::upsample:
      return {in[0], 2 * in[1], 2 * in[2]};
    case StepKind::downsample:
      return {in[0], in[1] / 2, in[2] / 2};
  }
  return in;
}

// ---- Row bands ----------------------------------------------------------------------------------

// Rows [start, start + t.size(2)) of a full-height map; every row held is exact.
struct Band {
  torch::Tensor t;  // [N, C, rows, W]
  int64_t start = 0;
  int64_t end() const { return start + t.size(2); }
};

// Rows [begin, end) of `band`, which must hold them.
torch::Tensor crop(const Band& band, int64_t begin, int64_t end) {
  if (begin < band.start || end > band.end() || begin > end)
    fail(kStreaming, "internal: rows [{}, {}) requested from a band of rows [{}, {})", begin, end,
         band.start, band.end());
  return band.t.narrow(2, begin - band.start, end - begin);
}

// A stride-1 'same' convolution of a band of a map with `height` rows: the rows whose window lies
// inside the band, or reaches past it only at the map's true border (where zero padding is
// right).
Band conv_band(torch::nn::Conv2dImpl& conv, const Band& in, int64_t height) {
  const int64_t margin = conv.weight.size(2) / 2;
  auto y = conv_forward(conv, in.t);  // Winograd where it wins, as in the untiled decoder
  if (y.size(2) != in.t.size(2))
    fail(kStreaming, "expected a 'same' convolution, got {} rows from {}", y.size(2), in.t.size(2));
  const int64_t begin = in.start > 0 ? in.start + margin : 0;
  const int64_t end = in.end() < height ? in.end() - margin : height;
  return {y.narrow(2, begin - in.start, end - begin), begin};
}

// A full-size [N, C, H, W] map kept as bands of `chunk` rows that are dropped once consumed, so
// a step that reads one map and writes another holds about one map, not two. Storage may be
// float16; rows() always returns the compute dtype.
class RowStore {
 public:
  RowStore() = default;
  RowStore(torch::IntArrayRef shape, int64_t chunk, torch::ScalarType storage,
           torch::ScalarType compute)
      : shape_(shape.vec()),
        chunk_(std::max<int64_t>(1, chunk)),
        storage_(storage),
        compute_(compute) {
    chunks_.resize((shape_[2] + chunk_ - 1) / chunk_);
  }
  // A whole tensor as one band (its memory is freed when the store drops it).
  static RowStore wrap(torch::Tensor t) {
    RowStore s(t.sizes(), t.size(2), t.scalar_type(), t.scalar_type());
    s.chunks_[0] = std::move(t);
    return s;
  }

  int64_t height() const { return shape_[2]; }
  int64_t width() const { return shape_[3]; }
  int64_t channels() const { return shape_[1]; }
  int64_t batch() const { return shape_[0]; }
  torch::ScalarType compute() const { return compute_; }

  // Rows [max(begin, 0), min(end, H)).
  torch::Tensor rows(int64_t begin, int64_t end) const {
    begin = std::max<int64_t>(begin, 0);
    end = std::min(end, height());
    std::vector<torch::Tensor> parts;
    for (int64_t k = begin / chunk_; k * chunk_ < end; ++k) {
      const auto& c = chunks_[k];
      if (!c.defined()) fail(kStreaming, "internal: rows of band {} read after release", k);
      const int64_t lo = std::max(begin, k * chunk_), hi = std::min(end, (k + 1) * chunk_);
      parts.push_back(c.narrow(2, lo - k * chunk_, hi - lo));
    }
    auto t = parts.size() == 1 ? parts[0] : torch::cat(parts, 2);
    return t.scalar_type() == compute_ ? t : t.to(compute_);
  }

  // Stores rows [begin, begin + t.size(2)); begin is a band start, t a whole band.
  void write(int64_t begin, const torch::Tensor& t) {
    const int64_t k = begin / chunk_;
    if (begin % chunk_ != 0 || t.size(2) != std::min(chunk_, height() - begin))
      fail(kStreaming, "internal: write of {} rows at {} into bands of {}", t.size(2), begin,
           chunk_);
    // Its own mapping: released bands go back to the OS at once, so the map being read shrinks
    // while the one being written grows (the allocator would keep the freed pages resident).
    auto stored = empty_mapped(t.sizes(), storage_);
    stored.copy_(t);
    if (storage_ == torch::kHalf && !torch::isfinite(stored).all().item<bool>() &&
        torch::isfinite(t).all().item<bool>())
      fail(kStreaming,
           "an intermediate value exceeds float16's range (max |x| = {}); stream with float32 "
           "storage instead (a larger memory bound)",
           t.abs().max().item<double>());
    chunks_[k] = std::move(stored);
  }

  // Drops the bands that end at or before `row`.
  void release_before(int64_t row) {
    for (int64_t k = 0; k < static_cast<int64_t>(chunks_.size()) && (k + 1) * chunk_ <= row; ++k)
      chunks_[k] = torch::Tensor();
  }

  // The whole map as one tensor in the compute dtype; the store is empty afterwards (each band is
  // released once copied, so the map is not held twice).
  torch::Tensor take() {
    auto whole = torch::empty(shape_, torch::TensorOptions().dtype(compute_));
    for (size_t k = 0; k < chunks_.size(); ++k) {
      const int64_t begin = static_cast<int64_t>(k) * chunk_;
      const auto part = rows(begin, begin + chunk_);
      whole.narrow(2, begin, part.size(2)).copy_(part);
      chunks_[k] = torch::Tensor();
    }
    return whole;
  }

 private:
  std::vector<int64_t> shape_;
  int64_t chunk_ = 1;
  torch::ScalarType storage_ = torch::kFloat, compute_ = torch::kFloat;
  std::vector<torch::Tensor> chunks_;
};

// Exact rows [b, e) (already clamped) of a lifted step's output, `height` rows high, from the rows
// of its input map (`in_rows(b', e')`, exact and clamped, `in_height` rows high).
template <typename InRows>
torch::Tensor lifted_rows(const Step& lift, InRows&& in_rows, int64_t in_height, int64_t height,
                          int64_t b, int64_t e) {
  if (lift.kind == StepKind::conv) {
    const int64_t margin = lift.conv->weight.size(2) / 2, from = std::max<int64_t>(b - margin, 0);
    return crop(
        conv_band(*lift.conv, {in_rows(from, std::min(e + margin, in_height)), from}, height), b,
        e);
  }
  // Upsample: one extra input row on each side covers its 3x3 conv (two output rows).
  const int64_t lo = std::max<int64_t>(b / 2 - 1, 0), hi = std::min((e + 1) / 2 + 1, in_height);
  const auto y = lift.up->forward(in_rows(lo, hi));  // rows [2 lo, 2 hi)
  const int64_t valid_begin = lo > 0 ? 2 * lo + 1 : 0;
  const int64_t valid_end = hi < in_height ? 2 * hi - 1 : height;
  return crop({y.narrow(2, valid_begin - 2 * lo, valid_end - valid_begin), valid_begin}, b, e);
}

// The input of a step: a stored map, optionally through a cheap step that is recomputed for every
// band instead of stored (an upsample, whose output is 4x its input; a conv_in).
struct Source {
  RowStore* store = nullptr;
  const Step* lift = nullptr;  // upsample or conv, or none

  int64_t height() const {
    return lift && lift->kind == StepKind::upsample ? 2 * store->height() : store->height();
  }
  int64_t width() const {
    return lift && lift->kind == StepKind::upsample ? 2 * store->width() : store->width();
  }
  int64_t channels() const {
    return lift && lift->kind == StepKind::conv ? conv_out_channels(*lift->conv)
                                                : store->channels();
  }
  int64_t batch() const { return store->batch(); }

  // Exact rows [max(begin, 0), min(end, height)).
  torch::Tensor rows(int64_t begin, int64_t end) const {
    const int64_t b = std::max<int64_t>(begin, 0), e = std::min(end, height());
    if (!lift) return store->rows(b, e);
    return lifted_rows(
        *lift, [this](int64_t lo, int64_t hi) { return store->rows(lo, hi); }, store->height(),
        height(), b, e);
  }

  // No row before `row` will be asked for again.
  void release_before(int64_t row) const {
    if (!lift)
      store->release_before(row);
    else if (lift->kind == StepKind::conv)
      store->release_before(row - lift->conv->weight.size(2) / 2);
    else
      store->release_before(row / 2 - 1);
  }
};

// ---- GroupNorm with statistics of the whole map -------------------------------------------------

// Per (sample, group) sums over all rows seen, in float64.
class GroupStats {
 public:
  explicit GroupStats(int64_t groups) : groups_(groups) {}
  void add(const torch::Tensor& x) {  // x: [N, C, rows, W]
    const auto d = x.to(torch::kDouble).reshape({x.size(0), groups_, -1});
    const auto s = d.sum(-1), q = (d * d).sum(-1);  // [N, G]
    sum_ = sum_.defined() ? sum_ + s : s;
    sumsq_ = sumsq_.defined() ? sumsq_ + q : q;
    count_ += d.size(2);
  }
  // GroupNorm as a per-channel affine map x * scale + shift ([N, C, 1, 1] each), like PyTorch's
  // CPU kernel applies it.
  std::pair<torch::Tensor, torch::Tensor> affine(torch::nn::GroupNormImpl& norm, int64_t channels,
                                                 torch::ScalarType dtype) const {
    const auto n = sum_.size(0);
    const auto mean = sum_ / static_cast<double>(count_);
    const auto var = (sumsq_ / static_cast<double>(count_) - mean * mean).clamp_min(0);
    const auto rstd = (var + norm.options.eps()).rsqrt();
    const int64_t per_group = channels / groups_;
    auto scale = rstd.repeat_interleave(per_group, 1);  // [N, C]
    auto shift = -mean.repeat_interleave(per_group, 1) * scale;
    if (norm.options.affine()) {
      const auto gamma = norm.weight.to(torch::kDouble), beta = norm.bias.to(torch::kDouble);
      scale = scale * gamma;
      shift = shift * gamma + beta;
    }
    return {scale.to(dtype).reshape({n, channels, 1, 1}),
            shift.to(dtype).reshape({n, channels, 1, 1})};
  }

 private:
  int64_t groups_;
  torch::Tensor sum_, sumsq_;
  int64_t count_ = 0;
};

struct NormAffine {
  torch::Tensor scale, shift;
  // swish(norm(x))
  torch::Tensor operator()(const torch::Tensor& x) const {
    auto y = normed(x);
    return torch::silu_(y);
  }
  // norm(x)
  torch::Tensor normed(const torch::Tensor& x) const { return x.mul(scale).add_(shift); }
};

// ---- Streamed steps -----------------------------------------------------------------------------

struct Context {
  StreamingOptions options;
  torch::ScalarType compute;
  torch::ScalarType storage() const { return options.half_storage() ? torch::kHalf : compute; }
  // Band height for maps `width` wide whose band temporaries take `units` values per column.
  int64_t band_rows(int64_t batch, int64_t width, int64_t units, int64_t height) const {
    const int64_t per_row = batch * width * units * static_cast<int64_t>(elementSize(compute));
    return std::min(std::max<int64_t>(height, 1),
                    std::max<int64_t>(4, options.band_bytes() / std::max<int64_t>(per_row, 1)));
  }
};

template <typename Fn>
void for_bands(int64_t height, int64_t rows, Fn&& fn) {
  for (int64_t begin = 0; begin < height; begin += rows) fn(begin, std::min(begin + rows, height));
}

NormAffine whole_map_norm(torch::nn::GroupNormImpl& norm, const Context& ctx, int64_t height,
                          int64_t rows, int64_t channels,
                          const std::function<torch::Tensor(int64_t, int64_t)>& band) {
  GroupStats stats(norm.options.num_groups());
  for_bands(height, rows, [&](int64_t b, int64_t e) { stats.add(band(b, e)); });
  auto [scale, shift] = stats.affine(norm, channels, ctx.compute);
  return {scale, shift};
}

// x + conv2(swish(norm2(conv1(swish(norm1(x)))))), three sweeps: norm1 statistics, norm2
// statistics (conv1 with a 1-row halo), output (conv1 and conv2 with a 2-row halo).
RowStore stream_resnet(LdmResnetBlockImpl& block, const Source& src, const Context& ctx) {
  const int64_t height = src.height(), width = src.width(), n = src.batch();
  const int64_t c_in = src.channels(), c_out = conv_out_channels(*block.conv2);
  const int64_t rows = ctx.band_rows(n, width, 4 * c_in + 6 * c_out, height);
  const auto norm1 = whole_map_norm(*block.norm1, ctx, height, rows, c_in,
                                    [&](int64_t b, int64_t e) { return src.rows(b, e); });
  const auto h_band = [&](int64_t b, int64_t e, int64_t halo) {  // conv1 rows [b - halo + 1, ...)
    const int64_t from = std::max<int64_t>(b - halo, 0);
    Band in{src.rows(from, e + halo), from};
    return std::make_pair(conv_band(*block.conv1, {norm1(in.t), from}, height), in);
  };
  const auto norm2 =
      whole_map_norm(*block.norm2, ctx, height, rows, c_out,
                     [&](int64_t b, int64_t e) { return crop(h_band(b, e, 1).first, b, e); });
  RowStore out({n, c_out, height, width}, rows, ctx.storage(), ctx.compute);
  for_bands(height, rows, [&](int64_t b, int64_t e) {
    auto [h, in] = h_band(b, e, 2);
    const auto g =
        crop(conv_band(*block.conv2, {block.dropout->forward(norm2(h.t)), h.start}, height), b, e);
    const auto x = crop(in, b, e);
    out.write(b, (block.nin_shortcut ? block.nin_shortcut->forward(x) : x) + g);
    src.release_before(e - 2);
  });
  return out;
}

// Stride-2 downsampling: output rows [b, e) read input rows [2b, 2e + 1).
template <typename Map>  // Source or Chain
RowStore stream_downsample(LdmDownsampleImpl& down, const Map& src, const Context& ctx) {
  const int64_t height = src.height(), n = src.batch(), c = src.channels();
  if (height % 2 != 0 || src.width() % 2 != 0)
    fail(kStreaming, "expected even sides before a downsample, got {}x{}", height, src.width());
  const int64_t out_height = height / 2;
  const int64_t rows = ctx.band_rows(n, src.width() / 2, 12 * c, out_height);
  RowStore out({n, c, out_height, src.width() / 2}, rows, ctx.storage(), ctx.compute);
  for_bands(out_height, rows, [&](int64_t b, int64_t e) {
    const auto y = down.forward(src.rows(2 * b, 2 * e + 1));
    if (y.size(2) < e - b)
      fail(kStreaming, "internal: downsample gave {} rows, expected {}", y.size(2), e - b);
    out.write(b, y.narrow(2, 0, e - b));
    src.release_before(2 * e);
  });
  return out;
}

// conv_out(swish(norm_out(x))) (then tanh): two sweeps.
template <typename Map>  // Source or Chain
RowStore stream_out(const Step& step, const Map& src, const Context& ctx) {
  const int64_t height = src.height(), width = src.width(), n = src.batch();
  const int64_t c_in = src.channels(), c_out = conv_out_channels(*step.conv);
  const int64_t rows = ctx.band_rows(n, width, 6 * c_in + 2 * c_out, height);
  const auto norm = whole_map_norm(*step.norm, ctx, height, rows, c_in,
                                   [&](int64_t b, int64_t e) { return src.rows(b, e); });
  // The result is the final output: always in the compute dtype.
  RowStore out({n, c_out, height, width}, rows, ctx.compute, ctx.compute);
  for_bands(height, rows, [&](int64_t b, int64_t e) {
    const int64_t from = std::max<int64_t>(b - 1, 0);
    const auto in = src.rows(from, e + 1);
    auto y = crop(conv_band(*step.conv, {norm(in), from}, height), b, e);
    out.write(b, step.tanh ? torch::tanh(y) : y);
    src.release_before(e - 1);
  });
  return out;
}

// x + proj_out(attention(q, k, v)) of LdmAttnBlock over the whole map, in three sweeps: norm
// statistics; keys and values of every position (two maps, the only whole ones); then bands of
// query rows, each attending to all positions, added to its input rows. Peak: the input map being
// released, the output growing, keys and values, one band's scores.
RowStore stream_attention(LdmAttnBlockImpl& attn, const Source& src, const Context& ctx) {
  const int64_t height = src.height(), width = src.width(), n = src.batch();
  const int64_t c = src.channels(), positions = height * width;
  const int64_t rows = ctx.band_rows(n, width, 8 * c, height);
  const auto norm = whole_map_norm(*attn.norm, ctx, height, rows, c,
                                   [&](int64_t b, int64_t e) { return src.rows(b, e); });
  auto keys = empty_mapped({n, c, positions}, ctx.compute);    // [N, C, HW]
  auto values = empty_mapped({n, positions, c}, ctx.compute);  // [N, HW, C]
  for_bands(height, rows, [&](int64_t b, int64_t e) {
    const auto normed = norm.normed(src.rows(b, e));
    keys.narrow(2, b * width, (e - b) * width).copy_(attn.k(normed).reshape({n, c, -1}));
    values.narrow(1, b * width, (e - b) * width)
        .copy_(attn.v(normed).reshape({n, c, -1}).transpose(1, 2));
  });
  // Queries in chunks whose scores and their softmax [N, chunk, HW] fit the band budget.
  const int64_t chunk =
      std::clamp<int64_t>(ctx.options.band_bytes() /
                              (2 * n * positions * static_cast<int64_t>(elementSize(ctx.compute))),
                          1, positions);
  const double q_scale = 1.0 / std::sqrt(static_cast<double>(c));  // as LdmAttnBlock scales q
  RowStore out({n, c, height, width}, rows, ctx.storage(), ctx.compute);
  for_bands(height, rows, [&](int64_t b, int64_t e) {
    const auto x = src.rows(b, e);
    const auto queries = (attn.q(norm.normed(x)) * q_scale).reshape({n, c, -1}).transpose(1, 2);
    const int64_t count = queries.size(1);
    auto h = torch::empty({n, count, c}, queries.options());  // [N, rows * W, C]
    for (int64_t at = 0; at < count; at += chunk) {
      const int64_t len = std::min(chunk, count - at);
      h.narrow(1, at, len)
          .copy_(batched_matmul(
              torch::softmax(batched_matmul(queries.narrow(1, at, len), keys), -1), values));
    }
    out.write(b, x + attn.proj_out(h.transpose(1, 2).reshape({n, c, e - b, width})));
    src.release_before(e);
  });
  return out;
}

// Stores what a lifted source computes (a lift with no step after it to absorb it).
template <typename Map>  // Source or Chain
RowStore materialise(const Map& src, const Context& ctx) {
  const int64_t height = src.height(), n = src.batch();
  const int64_t rows = ctx.band_rows(n, src.width(), 4 * src.channels(), height);
  RowStore out({n, src.channels(), height, src.width()}, rows, ctx.storage(), ctx.compute);
  for_bands(height, rows, [&](int64_t b, int64_t e) {
    out.write(b, src.rows(b, e));
    src.release_before(e - 1);
  });
  return out;
}

// Steps [begin, end) over bands of the map in `current`, each step's output stored.
RowStore run_stored(const std::vector<Step>& steps, size_t begin, size_t end, RowStore current,
                    const Context& ctx) {
  const Step* lift = nullptr;
  for (size_t i = begin; i < end; ++i) {
    const Step& step = steps[i];
    if (step.kind == StepKind::upsample || step.kind == StepKind::conv) {
      if (lift) {
        current = materialise(Source{&current, lift}, ctx);
        release_caches(*lift);
      }
      lift = &step;
      continue;
    }
    const Source src{&current, lift};
    const Step* lifted = lift;
    const int64_t width_before = current.width();
    lift = nullptr;
    switch (step.kind) {
      case StepKind::resnet:
        current = stream_resnet(*step.block, src, ctx);
        break;
      case StepKind::downsample:
        current = stream_downsample(*step.down, src, ctx);
        break;
      case StepKind::out:
        current = stream_out(step, src, ctx);
        break;
      case StepKind::attn:
        current = stream_attention(*step.attn, src, ctx);
        break;
      default:
        fail(kStreaming, "internal: unexpected step");
    }
    release_caches(step);
    if (lifted) release_caches(*lifted);
    // A new level: bands of other sizes from here on, so the pages the allocator kept for the
    // last level's go back (once per level; per step it costs ~10% in page faults).
    if (current.width() != width_before) release_free_memory();
  }
  if (lift) {
    current = materialise(Source{&current, lift}, ctx);
    release_caches(*lift);
  }
  return current;
}

// ---- Recomputed instead of stored ---------------------------------------------------------------

// Rows of a map produced in order with the last ones kept: asking for [b, e) after [b', e') with
// b' <= b <= e' computes only rows [e', e) (a line buffer); anything else starts afresh.
class LineBuffer {
 public:
  template <typename Compute>  // Compute(b, e) -> exact rows [b, e)
  torch::Tensor rows(int64_t b, int64_t e, Compute&& compute) {
    if (!kept_.defined() || b < start_ || b > end_) {
      kept_ = torch::Tensor();
      start_ = end_ = b;
    }
    if (e > end_) {
      auto fresh = compute(end_, e);
      kept_ = kept_.defined() ? torch::cat({kept_.narrow(2, b - start_, end_ - b), fresh}, 2)
                              : std::move(fresh);
      start_ = b;
      end_ = e;
    }
    return kept_.narrow(2, b - start_, e - b);
  }

 private:
  torch::Tensor kept_;
  int64_t start_ = 0, end_ = 0;
};

// A map that is never stored: exact rows on demand, computed from the map before it.
struct Chain {
  std::function<torch::Tensor(int64_t, int64_t)> compute;  // exact rows [b, e), in the map
  int64_t n = 0, c = 0, h = 0, w = 0;                      // [N, C, H, W]
  std::shared_ptr<LineBuffer> kept = std::make_shared<LineBuffer>();

  int64_t batch() const { return n; }
  int64_t channels() const { return c; }
  int64_t height() const { return h; }
  int64_t width() const { return w; }
  // Rows [max(b, 0), min(e, height)).
  torch::Tensor rows(int64_t b, int64_t e) const {
    return kept->rows(std::max<int64_t>(b, 0), std::min(e, h), compute);
  }
  void release_before(int64_t) const {}  // nothing stored
};

Chain stored_chain(const RowStore& store) {
  const RowStore* s = &store;
  return {[s](int64_t b, int64_t e) { return s->rows(b, e); }, store.batch(), store.channels(),
          store.height(), store.width()};
}

// A lifted step (upsample or conv) over a chain.
Chain lifted_chain(const Step& step, const Chain& in) {
  const int64_t scale = step.kind == StepKind::upsample ? 2 : 1;
  Chain out{nullptr, in.n, step.kind == StepKind::conv ? conv_out_channels(*step.conv) : in.c,
            scale * in.h, scale * in.w};
  out.compute = [step, in, height = out.h](int64_t b, int64_t e) {
    return lifted_rows(
        step, [&in](int64_t lo, int64_t hi) { return in.rows(lo, hi); }, in.h, height, b, e);
  };
  return out;
}

// conv1(swish(norm1(x))) rows of a resnet block over a chain.
Chain resnet_inner_chain(LdmResnetBlockImpl& block, const NormAffine& norm1, const Chain& in) {
  Chain out{nullptr, in.n, conv_out_channels(*block.conv1), in.h, in.w};
  out.compute = [&block, norm1, in](int64_t b, int64_t e) {
    const int64_t from = std::max<int64_t>(b - 1, 0);
    return crop(conv_band(*block.conv1, {norm1(in.rows(from, e + 1)), from}, in.h), b, e);
  };
  return out;
}

// The whole resnet block over a chain, its inner rows kept in a line buffer of their own.
Chain resnet_chain(LdmResnetBlockImpl& block, const Chain& inner, const NormAffine& norm2,
                   const Chain& in) {
  Chain out{nullptr, in.n, conv_out_channels(*block.conv2), in.h, in.w};
  out.compute = [&block, inner, norm2, in](int64_t b, int64_t e) {
    const int64_t from = std::max<int64_t>(b - 1, 0);
    const auto h = inner.rows(from, e + 1);
    const auto g =
        crop(conv_band(*block.conv2, {block.dropout->forward(norm2(h)), from}, in.h), b, e);
    const auto x = in.rows(b, e);
    return (block.nin_shortcut ? block.nin_shortcut->forward(x) : x) + g;
  };
  return out;
}

NormAffine chain_norm(torch::nn::GroupNormImpl& norm, const Chain& chain, const Context& ctx,
                      int64_t rows) {
  return whole_map_norm(norm, ctx, chain.h, rows, chain.c,
                        [&](int64_t b, int64_t e) { return chain.rows(b, e); });
}

// Steps [begin, end) without storing any map between them: each GroupNorm's statistics come
// from a sweep that recomputes its input from `in`, row by row through line buffers, and a last
// sweep stores the output of step end - 1 (a downsample, the decoder's output, or any step).
// Costs one sweep per norm instead of one per step; holds `in`, its output and a few bands.
RowStore run_recomputed(const std::vector<Step>& steps, size_t begin, size_t end, RowStore in,
                        const Context& ctx) {
  Chain chain = stored_chain(in);
  for (size_t i = begin; i < end; ++i) {
    const Step& step = steps[i];
    const bool last = i + 1 == end;
    switch (step.kind) {
      case StepKind::upsample:
      case StepKind::conv:
        chain = lifted_chain(step, chain);
        break;
      case StepKind::resnet: {
        // Units per column: the line buffers of every stage so far, each a few of the widest map.
        const int64_t units = 12 * std::max(chain.c, in.channels());
        const int64_t rows = ctx.band_rows(chain.n, chain.w, units, chain.h);
        const auto norm1 = chain_norm(*step.block->norm1, chain, ctx, rows);
        const Chain inner = resnet_inner_chain(*step.block, norm1, chain);
        const auto norm2 = chain_norm(*step.block->norm2, inner, ctx, rows);
        chain = resnet_chain(*step.block, inner, norm2, chain);
        break;
      }
      case StepKind::out: {
        if (!last) fail(kStreaming, "internal: the output step must end a recomputed run");
        auto out = stream_out(step, chain, ctx);
        release_caches(step);
        return out;
      }
      case StepKind::downsample:
        if (!last) fail(kStreaming, "internal: a downsample must end a recomputed run");
        return stream_downsample(*step.down, chain, ctx);
      default:
        fail(kStreaming, "internal: attention cannot be recomputed");
    }
  }
  return materialise(chain, ctx);  // the run ends on a lift or a resnet
}

// The full-resolution level: in the decoder, from its last upsample to the end; in the encoder,
// from the start to its first downsample. [begin, end), empty when there is none.
std::pair<size_t, size_t> full_resolution_steps(const std::vector<Step>& steps, bool decoder) {
  if (decoder) {
    for (size_t i = steps.size(); i > 0; --i)
      if (steps[i - 1].kind == StepKind::upsample) return {i - 1, steps.size()};
  } else {
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i].kind == StepKind::downsample) return {0, i + 1};
  }
  return {0, 0};
}

// The whole network over bands of x; the full-resolution level recomputed rather than stored when
// the options ask.
torch::Tensor run_streamed(const std::vector<Step>& steps, bool decoder, torch::Tensor x,
                           const Context& ctx) {
  RowStore current = RowStore::wrap(std::move(x));
  const auto [first, last] = ctx.options.recompute_full_resolution()
                                 ? full_resolution_steps(steps, decoder)
                                 : std::pair<size_t, size_t>{0, 0};
  if (first == last) return run_stored(steps, 0, steps.size(), std::move(current), ctx).take();
  current = run_stored(steps, 0, first, std::move(current), ctx);
  current = run_recomputed(steps, first, last, std::move(current), ctx);
  release_free_memory();
  return run_stored(steps, last, steps.size(), std::move(current), ctx).take();
}

Context make_context(const StreamingOptions& options, const torch::Tensor& x) {
  if (options.band_bytes() <= 0)
    fail(kStreaming, "band_bytes: expected > 0, got {}", options.band_bytes());
  if (!x.is_floating_point())
    fail(kStreaming, "expected a floating-point input, got {}", c10::toString(x.scalar_type()));
  return {options, x.scalar_type()};
}

// ---- Memory estimates ---------------------------------------------------------------------------

// Peak activations of a module's own forward, as a multiple of its largest map: calibrated on the
// SD decoder at 512 px (largest map 256 MiB): 1191 MB with LibTorch's convolution (4629 MB at
// 1024 px), 3150 MB with Winograd, whose scratch holds the tile transforms of a layer's whole
// input and output (2.25x each) and whose transformed weights (4x) are kept between calls
// (bench/streaming_bench, 2026-12-03).
constexpr double kWholePeakFactorDirect = 4.5;
constexpr double kWholePeakFactorWinograd = 12.5;
// Attention score chunk of LdmAttnBlock (16M floats).
constexpr int64_t kAttentionChunkBytes = int64_t{64} << 20;

// Bytes of the largest 3x3 conv weight among the steps: a streamed step holds at most two such
// layers' Winograd transforms (4x the weight each) while it runs.
int64_t largest_conv3x3_weight(const std::vector<Step>& steps) {
  int64_t largest = 0;
  const auto consider = [&](const torch::nn::Conv2dImpl* conv) {
    if (conv && conv->weight.dim() == 4 && conv->weight.size(2) == 3)
      largest = std::max(largest, conv->weight.numel() * 4);
  };
  for (const Step& s : steps) {
    consider(s.conv);
    if (s.block) {
      consider(s.block->conv1.get());
      consider(s.block->conv2.get());
    }
  }
  return largest;
}

CoderMemory estimate(const std::vector<Step>& steps, bool decoder, torch::IntArrayRef shape,
                     const StreamingOptions& options) {
  const int64_t n = shape[0], elem = 4;
  std::array<int64_t, 3> s{shape[1], shape[2], shape[3]};
  const auto bytes = [&](const std::array<int64_t, 3>& a) { return n * a[0] * a[1] * a[2] * elem; };
  // Streamed: the map a step reads shrinks as the one it writes grows, so a step holds about the
  // larger of the two; attention also holds keys and values (compute dtype) of its whole map.
  // Recomputed full-resolution level: the map before it and its output (float16 storage).
  const auto [first, last] = full_resolution_steps(steps, decoder);
  int64_t whole_max = bytes(s), peak = 0, peak_half = 0, peak_recompute = 0, stored = bytes(s);
  int64_t peak_recompute_f32 = 0;
  int64_t before_level = 0;
  bool attention = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const auto next = step_shape(step, s);
    whole_max = std::max({whole_max, bytes(next)});
    if (i == first) before_level = stored;
    if (step.kind != StepKind::upsample && step.kind != StepKind::conv) {  // lifts: recomputed
      const int64_t maps = std::max(stored, bytes(next));
      const int64_t keys_values = step.kind == StepKind::attn ? 2 * bytes(s) : 0;
      attention = attention || step.kind == StepKind::attn;
      peak = std::max(peak, maps + keys_values);
      peak_half = std::max(peak_half, maps / 2 + keys_values);
      if (i < first || i >= last) {
        peak_recompute = std::max(peak_recompute, maps / 2 + keys_values);
        peak_recompute_f32 = std::max(peak_recompute_f32, maps + keys_values);
      }
      stored = bytes(next);
    }
    if (i + 1 == last) {
      peak_recompute =
          std::max(peak_recompute,
                   before_level / 2 + (step.kind == StepKind::out ? bytes(next) : bytes(next) / 2));
      peak_recompute_f32 = std::max(peak_recompute_f32, before_level + bytes(next));
    }
    s = next;
  }
  const int64_t band = 2 * options.band_bytes() + 8 * largest_conv3x3_weight(steps);
  const int64_t output = bytes(s);
  CoderMemory m;
  const double factor = winograd_active() ? kWholePeakFactorWinograd : kWholePeakFactorDirect;
  m.untiled = static_cast<int64_t>(factor * whole_max) + (attention ? kAttentionChunkBytes : 0);
  m.streamed = peak + band + output;
  m.streamed_half = peak_half + band + output;
  // Line buffers: each stage of the level keeps a band of its rows, sized so that all of them
  // together take about one band.
  m.streamed_recompute =
      first == last ? m.streamed_half : peak_recompute + band + options.band_bytes() + output;
  m.streamed_recompute_f32 =
      first == last ? m.streamed : peak_recompute_f32 + band + options.band_bytes() + output;
  return m;
}

}  // namespace

torch::Tensor streamed_decode(LdmDecoderImpl& decoder, const torch::Tensor& z,
                              const StreamingOptions& options) {
  const auto z_channels = decoder.options().z_channels();
  if (z.dim() != 4 || z.size(1) != z_channels || z.size(0) == 0 || z.size(2) == 0 || z.size(3) == 0)
    fail("streamed_decode", "expected latents [N, {}, h, w], got {}", z_channels,
         shape_str(z.sizes()));
  torch::NoGradGuard no_grad;
  const auto ctx = make_context(options, z);
  const auto steps = decoder_steps(decoder);
  return run_streamed(steps, true, z, ctx);
}

torch::Tensor streamed_encode(LdmEncoderImpl& encoder, const torch::Tensor& x,
                              const StreamingOptions& options) {
  const auto f = encoder.factor(), channels = encoder.options().in_channels();
  if (x.dim() != 4 || x.size(1) != channels || x.size(0) == 0 || x.size(2) == 0 || x.size(3) == 0 ||
      x.size(2) % f != 0 || x.size(3) % f != 0)
    fail("streamed_encode",
         "expected images [N, {}, H, W] with H and W positive multiples of {}, got {}", channels, f,
         shape_str(x.sizes()));
  torch::NoGradGuard no_grad;
  const auto ctx = make_context(options, x);
  const auto steps = encoder_steps(encoder);
  return run_streamed(steps, false, x, ctx);
}

CoderMemory estimate_decode_memory(LdmDecoderImpl& decoder, torch::IntArrayRef latent_shape,
                                   const StreamingOptions& options) {
  if (latent_shape.size() != 4)
    fail("estimate_decode_memory", "expected a latent shape [N, z, h, w], got {}",
         shape_str(latent_shape));
  const auto steps = decoder_steps(decoder);
  return estimate(steps, true, latent_shape, options);
}

CoderMemory estimate_encode_memory(LdmEncoderImpl& encoder, torch::IntArrayRef image_shape,
                                   const StreamingOptions& options) {
  if (image_shape.size() != 4)
    fail("estimate_encode_memory", "expected an image shape [N, C, H, W], got {}",
         shape_str(image_shape));
  const auto steps = encoder_steps(encoder);
  return estimate(steps, false, image_shape, options);
}

}  // namespace lf
