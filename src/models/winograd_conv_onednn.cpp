// oneDNN's fp32 Winograd F(4x4, 3x3) called through its own C++ API: LibTorch 1.13 always asks
// oneDNN for direct convolution, yet the same libdnnl.so.2 has Winograd kernels for avx512_core
// (2.2x faster at 256-512 channels). We write no kernel: only the memory plumbing around it.
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"
#include "models/winograd_conv.h"

namespace lf::winograd {
namespace {

using dnnl::memory;
using Dims = memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc any_f32(const Dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

// Throws dnnl::error (status unimplemented) where oneDNN has no Winograd for this CPU.
dnnl::convolution_forward::primitive_desc winograd_pd(int64_t n, int64_t c, int64_t o, int64_t h,
                                                      int64_t w) {
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd,
      any_f32({n, c, h, w}), any_f32({o, c, 3, 3}),
      memory::desc({o}, memory::data_type::f32, memory::format_tag::x), any_f32({n, o, h, w}),
      {1, 1}, {1, 1}, {1, 1});
  // Scratchpad from our allocator, per call (oneDNN's own "library" scratchpad is a buffer it
  // grows to the largest call and keeps for the life of the process).
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
}

// A weight in oneDNN's Winograd layout, made once per weight tensor and version. Keyed by the
// weight's TensorImpl; the weak pointer tells when the module owning it is gone.
struct TransformedWeight {
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  std::optional<Weak> owner;  // no default constructor of its own
  int64_t version = 0;
  const void* data = nullptr;
  memory::desc desc;
  torch::Tensor buffer;  // bytes of `desc`
};

std::mutex cache_mutex;
std::unordered_map<const c10::TensorImpl*, TransformedWeight> weight_cache;

// A float buffer of `bytes` from LibTorch's allocator (reused by jemalloc, no fresh pages).
torch::Tensor scratch(size_t bytes) {
  return torch::empty({static_cast<int64_t>((bytes + 3) / 4)}, torch::kFloat32);
}

torch::Tensor transformed_weight(const torch::Tensor& weight, const memory::desc& want,
                                 dnnl::stream& stream) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (auto it = weight_cache.begin(); it != weight_cache.end();)
    it = !it->second.owner || it->second.owner->expired() ? weight_cache.erase(it) : std::next(it);
  auto& entry = weight_cache[weight.unsafeGetTensorImpl()];
  if (entry.buffer.defined() && entry.owner && !entry.owner->expired() &&
      entry.version == weight._version() && entry.data == weight.data_ptr() && entry.desc == want)
    return entry.buffer;
  const auto plain = weight.contiguous();
  memory user(memory::desc({plain.size(0), plain.size(1), 3, 3}, memory::data_type::f32,
                           memory::format_tag::oihw),
              cpu_engine(), plain.data_ptr());
  auto buffer = scratch(want.get_size());
  memory blocked(want, cpu_engine(), buffer.data_ptr());
  dnnl::reorder(user, blocked).execute(stream, user, blocked);
  stream.wait();
  entry.owner.emplace(weight.getIntrusivePtr());
  entry.version = weight._version();
  entry.data = weight.data_ptr();
  entry.desc = want;
  entry.buffer = buffer;
  return buffer;
}

memory::desc plain_f32(const Dims& dims) {
  return memory::desc(dims, memory::data_type::f32,
                      dims.size() == 4 ? memory::format_tag::nchw : memory::format_tag::x);
}

// `t` (contiguous, laid out as `plain`) as oneDNN memory of layout `want`: t itself where the
// layouts agree, else a reordered copy in `keep`.
memory in_layout(const torch::Tensor& t, const memory::desc& plain, const memory::desc& want,
                 dnnl::stream& stream, torch::Tensor& keep) {
  memory user(plain, cpu_engine(), t.data_ptr());
  if (want == plain) return user;
  keep = scratch(want.get_size());
  memory blocked(want, cpu_engine(), keep.data_ptr());
  dnnl::reorder(user, blocked).execute(stream, user, blocked);
  return blocked;
}

// Memory of layout `want` to compute into: `out` (contiguous, laid out as `plain`) itself where
// the layouts agree, else a buffer in `keep`; deliver() then brings the result to `out`.
memory out_layout(const torch::Tensor& out, const memory::desc& plain, const memory::desc& want,
                  torch::Tensor& keep) {
  if (want == plain) return memory(plain, cpu_engine(), out.data_ptr());
  keep = scratch(want.get_size());
  return memory(want, cpu_engine(), keep.data_ptr());
}

void deliver(memory computed, const torch::Tensor& out, const memory::desc& plain,
             dnnl::stream& stream) {
  if (computed.get_desc() == plain) return;  // computed in place
  memory user(plain, cpu_engine(), out.data_ptr());
  dnnl::reorder(computed, user).execute(stream, computed, user);
}

// Forward, backward-data and backward-weights primitives of one training shape, made once: the
// shapes of a training run are few, and making a primitive descriptor costs tens of microseconds.
struct TrainingPrimitives {
  dnnl::convolution_forward::primitive_desc forward_pd;
  dnnl::convolution_backward_data::primitive_desc data_pd;
  dnnl::convolution_backward_weights::primitive_desc weights_pd;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights weights;
};

using TrainingShape = std::array<int64_t, 5>;  // n, c, o, h, w

TrainingPrimitives make_training_primitives(const TrainingShape& shape) {
  const auto [n, c, o, h, w] = shape;
  const Dims src{n, c, h, w}, wei{o, c, 3, 3}, dst{n, o, h, w}, one{1, 1};
  const auto alg = dnnl::algorithm::convolution_winograd;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::convolution_forward::primitive_desc forward_pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, any_f32(src),
                                      any_f32(wei), plain_f32({o}), any_f32(dst), one, one, one),
      attr, cpu_engine());
  const dnnl::convolution_backward_data::primitive_desc data_pd(
      dnnl::convolution_backward_data::desc(alg, any_f32(src), any_f32(wei), any_f32(dst), one, one,
                                            one),
      attr, cpu_engine(), forward_pd);
  const dnnl::convolution_backward_weights::primitive_desc weights_pd(
      dnnl::convolution_backward_weights::desc(alg, any_f32(src), any_f32(wei), plain_f32({o}),
                                               any_f32(dst), one, one, one),
      attr, cpu_engine(), forward_pd);
  return {forward_pd,
          data_pd,
          weights_pd,
          dnnl::convolution_forward(forward_pd),
          dnnl::convolution_backward_data(data_pd),
          dnnl::convolution_backward_weights(weights_pd)};
}

// Shared: a primitive in use stays alive if another thread starts the table over. Null where
// oneDNN has no Winograd for the shape.
std::shared_ptr<const TrainingPrimitives> find_training_primitives(const TrainingShape& shape) {
  static std::mutex mutex;
  static std::map<TrainingShape, std::shared_ptr<const TrainingPrimitives>> made;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = made.find(shape);
  if (it == made.end()) {
    if (made.size() >= 256) made.clear();  // a run that keeps changing shapes: start over
    std::shared_ptr<const TrainingPrimitives> primitives;
    try {
      primitives = std::make_shared<const TrainingPrimitives>(make_training_primitives(shape));
    } catch (const dnnl::error&) {  // unimplemented for this shape or CPU
    }
    it = made.emplace(shape, std::move(primitives)).first;
  }
  return it->second;
}

std::shared_ptr<const TrainingPrimitives> training_primitives(const TrainingShape& shape) {
  auto primitives = find_training_primitives(shape);
  if (!primitives)
    fail("winograd::conv3x3_trainable",
         "oneDNN has no Winograd training kernels for {} -> {} channels at {}x{}, batch {}",
         shape[1], shape[2], shape[3], shape[4], shape[0]);
  return primitives;
}

memory scratchpad(const memory::desc& desc, torch::Tensor& keep) {
  keep = scratch(desc.get_size());
  return memory(desc, cpu_engine(), keep.data_ptr());
}

struct WinogradConvFunction : torch::autograd::Function<WinogradConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               bool has_bias) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
    const auto primitives = training_primitives({n, c, o, h, w});
    const auto& p = *primitives;
    const auto src = x.contiguous(), wei = weight.contiguous();
    const auto b = bias.contiguous();
    auto out = torch::empty({n, o, h, w}, x.options());
    dnnl::stream stream(cpu_engine());
    torch::Tensor src_keep, wei_keep, dst_keep, pad_keep;
    const auto src_mem =
        in_layout(src, plain_f32({n, c, h, w}), p.forward_pd.src_desc(), stream, src_keep);
    const auto wei_mem =
        in_layout(wei, plain_f32({o, c, 3, 3}), p.forward_pd.weights_desc(), stream, wei_keep);
    const auto dst_plain = plain_f32({n, o, h, w});
    const auto dst = out_layout(out, dst_plain, p.forward_pd.dst_desc(), dst_keep);
    p.forward.execute(
        stream, {{DNNL_ARG_SRC, src_mem},
                 {DNNL_ARG_WEIGHTS, wei_mem},
                 {DNNL_ARG_BIAS, memory(plain_f32({o}), cpu_engine(), b.data_ptr())},
                 {DNNL_ARG_DST, dst},
                 {DNNL_ARG_SCRATCHPAD, scratchpad(p.forward_pd.scratchpad_desc(), pad_keep)}});
    deliver(dst, out, dst_plain, stream);
    stream.wait();
    ctx->save_for_backward({src, wei});
    ctx->saved_data["has_bias"] = has_bias;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &src = saved[0], &wei = saved[1];
    const int64_t n = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3),
                  o = wei.size(0);
    const auto primitives = training_primitives({n, c, o, h, w});
    const auto& p = *primitives;
    const auto diff_dst = grads[0].contiguous();
    const auto src_plain = plain_f32({n, c, h, w}), dst_plain = plain_f32({n, o, h, w}),
               wei_plain = plain_f32({o, c, 3, 3});
    dnnl::stream stream(cpu_engine());
    torch::Tensor diff_dst_keep, diff_dst_keep2, wei_keep, src_keep, out_keep, pad_keep;
    torch::Tensor grad_x, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) {
      grad_x = torch::empty_like(src);
      const auto dd =
          in_layout(diff_dst, dst_plain, p.data_pd.diff_dst_desc(), stream, diff_dst_keep);
      const auto wm = in_layout(wei, wei_plain, p.data_pd.weights_desc(), stream, wei_keep);
      const auto ds = out_layout(grad_x, src_plain, p.data_pd.diff_src_desc(), out_keep);
      p.data.execute(stream,
                     {{DNNL_ARG_DIFF_DST, dd},
                      {DNNL_ARG_WEIGHTS, wm},
                      {DNNL_ARG_DIFF_SRC, ds},
                      {DNNL_ARG_SCRATCHPAD, scratchpad(p.data_pd.scratchpad_desc(), pad_keep)}});
      deliver(ds, grad_x, src_plain, stream);
    }
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    if (ctx->needs_input_grad(1) || (has_bias && ctx->needs_input_grad(2))) {
      grad_w = torch::empty_like(wei);
      grad_b = torch::empty({o}, wei.options());
      const auto sm = in_layout(src, src_plain, p.weights_pd.src_desc(), stream, src_keep);
      const auto dd =
          in_layout(diff_dst, dst_plain, p.weights_pd.diff_dst_desc(), stream, diff_dst_keep2);
      const auto dw = out_layout(grad_w, wei_plain, p.weights_pd.diff_weights_desc(), out_keep);
      p.weights.execute(
          stream, {{DNNL_ARG_SRC, sm},
                   {DNNL_ARG_DIFF_DST, dd},
                   {DNNL_ARG_DIFF_WEIGHTS, dw},
                   {DNNL_ARG_DIFF_BIAS, memory(plain_f32({o}), cpu_engine(), grad_b.data_ptr())},
                   {DNNL_ARG_SCRATCHPAD, scratchpad(p.weights_pd.scratchpad_desc(), pad_keep)}});
      deliver(dw, grad_w, wei_plain, stream);
    }
    stream.wait();
    if (!ctx->needs_input_grad(1)) grad_w = torch::Tensor();
    if (!has_bias || !ctx->needs_input_grad(2)) grad_b = torch::Tensor();
    return {grad_x, grad_w, grad_b, torch::Tensor()};
  }
};

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

}  // namespace

bool available() {
  static const bool ok = [] {
    try {
      winograd_pd(1, 64, 64, 32, 32);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

std::string describe() {
  const auto* v = dnnl::version();
  std::string text = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                     std::to_string(v->patch) + ", " + isa_name(dnnl::get_effective_cpu_isa());
  return available() ? text : text + ": no Winograd for this ISA";
}

torch::Tensor conv3x3(const torch::Tensor& x, const torch::Tensor& weight,
                      const torch::Tensor& bias) {
  if (x.dim() != 4 || weight.dim() != 4 || weight.size(1) != x.size(1) || weight.size(2) != 3 ||
      weight.size(3) != 3 || x.scalar_type() != torch::kFloat32 || !x.device().is_cpu())
    fail("winograd::conv3x3",
         "expected float32 CPU x [N, C, H, W] and weight [O, C, 3, 3], got {} and {}",
         shape_str(x.sizes()), shape_str(weight.sizes()));
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
  const auto pd = winograd_pd(n, c, o, h, w);
  dnnl::stream stream(cpu_engine());
  const auto src = x.contiguous();
  const auto b = bias.defined() ? bias.contiguous() : torch::zeros({o});
  auto out = torch::empty({n, o, h, w}, x.options());  // [N, O, H, W]

  torch::Tensor src_keep, dst_keep, pad_keep;
  // NCHW -> the blocked layout (nChw16c) the kernel reads, and back
  const auto src_mem = in_layout(src, plain_f32({n, c, h, w}), pd.src_desc(), stream, src_keep);
  const auto dst_plain = plain_f32({n, o, h, w});
  const auto dst_mem = out_layout(out, dst_plain, pd.dst_desc(), dst_keep);
  const auto weights = transformed_weight(weight, pd.weights_desc(), stream);
  dnnl::convolution_forward(pd).execute(
      stream, {{DNNL_ARG_SRC, src_mem},
               {DNNL_ARG_WEIGHTS, memory(pd.weights_desc(), cpu_engine(), weights.data_ptr())},
               {DNNL_ARG_BIAS, memory(pd.bias_desc(), cpu_engine(), b.data_ptr())},
               {DNNL_ARG_DST, dst_mem},
               {DNNL_ARG_SCRATCHPAD, scratchpad(pd.scratchpad_desc(), pad_keep)}});
  deliver(dst_mem, out, dst_plain, stream);
  stream.wait();
  return out;
}

bool trainable(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w) {
  return available() && find_training_primitives({n, c, o, h, w}) != nullptr;
}

torch::Tensor conv3x3_trainable(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias) {
  if (x.dim() != 4 || weight.dim() != 4 || weight.size(1) != x.size(1) || weight.size(2) != 3 ||
      weight.size(3) != 3 || x.scalar_type() != torch::kFloat32 ||
      weight.scalar_type() != torch::kFloat32 || !x.device().is_cpu() ||
      !weight.device().is_cpu() ||
      (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0) ||
                          bias.scalar_type() != torch::kFloat32 || !bias.device().is_cpu())))
    fail("winograd::conv3x3_trainable",
         "expected float32 CPU x [N, C, H, W], weight [O, C, 3, 3] and bias [O], got {}, {} and {}",
         shape_str(x.sizes()), shape_str(weight.sizes()),
         bias.defined() ? shape_str(bias.sizes()) : "none");
  // An autograd function's inputs must be defined: no bias is a zero bias that gets no gradient.
  return WinogradConvFunction::apply(
      x, weight, bias.defined() ? bias : torch::zeros({weight.size(0)}, x.options()),
      bias.defined());
}

void release_transformed(const torch::Tensor& weight) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  weight_cache.erase(weight.unsafeGetTensorImpl());
}

}  // namespace lf::winograd
