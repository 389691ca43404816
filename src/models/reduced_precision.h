// Inference in reduced precision (bf16, or fp16 on CUDA) through LibTorch's autocast, with the
// float32 retry stable-diffusion-webui does: an output holding NaN or Inf is computed again in
// float32 (fp16 overflows past 65504 inside large decoders).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace lf {

// "fp32" | "bf16" | "fp16" -> dtype; refuses fp16 on the CPU (LibTorch's CPU autocast is bf16
// only) and bf16 on a CPU whose oneDNN has no bf16 convolution (no AVX-512: oneDNN 2.6 runs bf16
// convolutions on avx512_core and newer only), each with a one-line error.
torch::Dtype parse_precision(const std::string& name, torch::Device device);

// Whether this CPU (as oneDNN sees it: ONEDNN_MAX_CPU_ISA caps it) runs bf16 convolutions; tried
// once on a tiny convolution.
bool cpu_bf16_convolutions_supported();

// Autocast to `dtype` on `device` while alive (nothing for float32); restores the previous state.
class AutocastGuard {
 public:
  AutocastGuard(torch::Device device, torch::Dtype dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cuda_ = false, previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

struct PrecisionResult {
  torch::Tensor output;  // float32
  bool retried = false;  // the reduced-precision output was not finite: this one is float32's
};

// Runs `compute` in `dtype` under autocast; if its output holds NaN or Inf, runs it again in
// float32. The output is returned in float32 either way.
PrecisionResult run_with_float32_retry(const std::function<torch::Tensor()>& compute,
                                       torch::Device device, torch::Dtype dtype);

}  // namespace lf
