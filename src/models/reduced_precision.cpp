// Autocast guard and the float32 retry of reduced-precision inference.
#include "models/reduced_precision.h"

#include <ATen/autocast_mode.h>

#include "core/error.h"

namespace lf {

bool cpu_bf16_convolutions_supported() {
  static const bool supported = [] {
    try {
      torch::NoGradGuard no_grad;
      const auto x = torch::ones({1, 8, 8, 8}, torch::kBFloat16);
      const auto w = torch::ones({8, 8, 3, 3}, torch::kBFloat16);
      torch::conv2d(x, w, {}, 1, 1);
      return true;
    } catch (const std::exception&) {
      return false;  // "could not create a primitive descriptor iterator"
    }
  }();
  return supported;
}

torch::Dtype parse_precision(const std::string& name, torch::Device device) {
  if (name == "fp32" || name == "float32") return torch::kFloat;
  if (name == "bf16" || name == "bfloat16") {
    if (!device.is_cuda() && !cpu_bf16_convolutions_supported())
      fail("precision",
           "bf16 on this CPU: its oneDNN has no bf16 convolution (it needs AVX-512; "
           "ONEDNN_MAX_CPU_ISA may cap it); use fp32");
    return torch::kBFloat16;
  }
  if (name == "fp16" || name == "float16") {
    if (!device.is_cuda())
      fail("precision", "fp16 needs a CUDA device (the CPU runs bf16 or fp32), got {}",
           device.str());
    return torch::kHalf;
  }
  fail("precision", "'{}': expected fp32, bf16 or fp16", name);
}

AutocastGuard::AutocastGuard(torch::Device device, torch::Dtype dtype) {
  if (dtype == torch::kFloat) return;
  active_ = true;
  cuda_ = device.is_cuda();
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // cast weights
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

PrecisionResult run_with_float32_retry(const std::function<torch::Tensor()>& compute,
                                       torch::Device device, torch::Dtype dtype) {
  PrecisionResult result;
  {
    AutocastGuard autocast(device, dtype);
    result.output = compute().to(torch::kFloat);
  }
  if (dtype != torch::kFloat && !torch::isfinite(result.output).all().item<bool>()) {
    result.output = compute().to(torch::kFloat);
    result.retried = true;
  }
  return result;
}

}  // namespace lf
