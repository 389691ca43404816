// Device parsing, thread count and seeding.
#include "core/runtime.h"

#include <thread>

#include "core/error.h"

namespace lf {

int cuda_device_count() {
  return torch::cuda::is_available() ? torch::cuda::device_count() : 0;
}

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return cuda_device_count() > 0 ? torch::Device("cuda:0") : torch::kCPU;
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (name.size() > 5) {
      const std::string digits = name.substr(5);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
          digits.size() > 3)
        fail("device", "'{}': expected cpu, cuda, cuda:N or auto", name);
      index = std::stoi(digits);
    }
    const int count = cuda_device_count();
    if (count == 0)
      fail("device", "'{}': CUDA is not available on this machine (use --device cpu)", name);
    if (index >= count) fail("device", "'{}': only {} CUDA device(s) present", name, count);
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("device", "'{}': expected cpu, cuda, cuda:N or auto", name);
}

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_threads(int threads) {
  if (threads < 0) fail("threads", "expected a count >= 0 (0 = all cores), got {}", threads);
  torch::set_num_threads(threads == 0 ? hardware_threads() : threads);
}

uint64_t seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
  return seed;
}

}  // namespace lf
