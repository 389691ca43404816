#include "models/batched_matmul.h"

#ifdef LF_HAVE_ONEDNN
#include <torch/csrc/autograd/custom_function.h>
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace lf {

#ifdef LF_HAVE_ONEDNN
namespace {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc strided_desc(const torch::Tensor& t) {
  return memory::desc(memory::dims(t.sizes().begin(), t.sizes().end()), memory::data_type::f32,
                      memory::dims(t.strides().begin(), t.strides().end()));
}

// oneDNN's fast matmul reads each matrix row- or column-major: one of the last two strides 1.
torch::Tensor matrix_major(const torch::Tensor& t) {
  return t.stride(-2) == 1 || t.stride(-1) == 1 ? t : t.contiguous();
}

torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  auto shape = a.sizes().vec();
  shape.back() = b.size(-1);
  auto c = torch::empty(shape, a.options());
  const auto a_desc = strided_desc(a), b_desc = strided_desc(b), c_desc = strided_desc(c);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // from our allocator, per call
  dnnl::matmul::primitive_desc pd;
  try {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_desc, b_desc, c_desc), attr,
                                      cpu_engine());
  } catch (const dnnl::error&) {  // a layout this oneDNN has no kernel for
    return torch::matmul(a, b);
  }
  const auto pad =
      torch::empty({static_cast<int64_t>((pd.scratchpad_desc().get_size() + 3) / 4)}, a.options());
  dnnl::stream stream(cpu_engine());
  dnnl::matmul(pd).execute(
      stream, {{DNNL_ARG_SRC, memory(a_desc, cpu_engine(), a.data_ptr())},
               {DNNL_ARG_WEIGHTS, memory(b_desc, cpu_engine(), b.data_ptr())},
               {DNNL_ARG_DST, memory(c_desc, cpu_engine(), c.data_ptr())},
               {DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), cpu_engine(), pad.data_ptr())}});
  stream.wait();
  return c;
}

struct BatchedMatmulFunction : torch::autograd::Function<BatchedMatmulFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return onednn_matmul(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grads[0];  // [..., M, N]
    torch::Tensor grad_a, grad_b;
    if (ctx->needs_input_grad(0))  // g b^T: [..., M, K]
      grad_a = onednn_matmul(matrix_major(g), saved[1].transpose(-2, -1));
    if (ctx->needs_input_grad(1))  // a^T g: [..., K, N]
      grad_b = onednn_matmul(saved[0].transpose(-2, -1), matrix_major(g));
    return {grad_a, grad_b};
  }
};

}  // namespace
#endif

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b) {
#ifdef LF_HAVE_ONEDNN
  if (a.dim() >= 3 && a.dim() <= 6 && b.dim() == a.dim() &&
      a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2) &&
      a.size(-1) == b.size(-2) && a.numel() > 0 && b.numel() > 0 && a.device().is_cpu() &&
      b.device().is_cpu() && a.scalar_type() == torch::kFloat32 &&
      b.scalar_type() == torch::kFloat32)
    return BatchedMatmulFunction::apply(matrix_major(a), matrix_major(b));
#endif
  return torch::matmul(a, b);
}

}  // namespace lf
