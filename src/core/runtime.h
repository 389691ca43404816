// Process-wide runtime settings: device choice, CPU threads, seeding.
#pragma once

#include <torch/torch.h>

#include <string>

namespace lf {

// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else CPU). Throws on an unknown name
// or when CUDA is asked for and not available.
torch::Device parse_device(const std::string& name);

// Sets torch's intra-op threads; 0 means all cores (LibTorch would otherwise use one here).
void set_threads(int threads);
int hardware_threads();

// Seeds torch (CPU and CUDA) and returns the seed used.
uint64_t seed_everything(uint64_t seed);

int cuda_device_count();

}  // namespace lf
