// oneDNN's fp32 Winograd F(4x4, 3x3) called through its own C++ API: LibTorch 1.13 always asks
// oneDNN for direct convolution, yet the same libdnnl.so.2 has Winograd kernels for avx512_core
// (2.2x faster at 256-512 channels). We write no kernel: only the memory plumbing around it.
#include <oneapi/dnnl/dnnl.hpp>

#include <mutex>
#include <optional>
#include <unordered_map>

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

  const memory::desc plain_src({n, c, h, w}, memory::data_type::f32, memory::format_tag::nchw);
  const memory::desc plain_dst({n, o, h, w}, memory::data_type::f32, memory::format_tag::nchw);
  memory src_mem(plain_src, cpu_engine(), src.data_ptr());
  torch::Tensor src_buffer, dst_buffer;
  if (pd.src_desc() != plain_src) {  // NCHW -> the blocked layout (nChw16c) the kernel reads
    src_buffer = scratch(pd.src_desc().get_size());
    memory blocked(pd.src_desc(), cpu_engine(), src_buffer.data_ptr());
    dnnl::reorder(src_mem, blocked).execute(stream, src_mem, blocked);
    src_mem = blocked;
  }
  memory out_mem(plain_dst, cpu_engine(), out.data_ptr());
  memory dst_mem = out_mem;
  if (pd.dst_desc() != plain_dst) {
    dst_buffer = scratch(pd.dst_desc().get_size());
    dst_mem = memory(pd.dst_desc(), cpu_engine(), dst_buffer.data_ptr());
  }
  const auto weights = transformed_weight(weight, pd.weights_desc(), stream);
  memory weight_mem(pd.weights_desc(), cpu_engine(), weights.data_ptr());
  memory bias_mem(pd.bias_desc(), cpu_engine(), b.data_ptr());
  const auto pad = scratch(pd.scratchpad_desc().get_size());
  memory pad_mem(pd.scratchpad_desc(), cpu_engine(), pad.data_ptr());
  dnnl::convolution_forward(pd).execute(stream, {{DNNL_ARG_SRC, src_mem},
                                                 {DNNL_ARG_WEIGHTS, weight_mem},
                                                 {DNNL_ARG_BIAS, bias_mem},
                                                 {DNNL_ARG_DST, dst_mem},
                                                 {DNNL_ARG_SCRATCHPAD, pad_mem}});
  if (dst_buffer.defined()) dnnl::reorder(dst_mem, out_mem).execute(stream, dst_mem, out_mem);
  stream.wait();
  return out;
}

void release_transformed(const torch::Tensor& weight) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  weight_cache.erase(weight.unsafeGetTensorImpl());
}

}  // namespace lf::winograd
