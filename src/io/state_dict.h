// Module weights by name: collect parameters + buffers under their registered names (which equal
// the reference checkpoint keys), load them back reporting missing/unexpected keys and refusing
// shape mismatches, and read/write them as .safetensors.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace lf {

using TensorMap = std::map<std::string, torch::Tensor>;

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  size_t loaded = 0;
  std::string summary() const;  // "loaded 120 tensors; missing: a, b; unexpected: c"
};

TensorMap module_state(const torch::nn::Module& module);  // parameters + buffers, detached

// Copies tensors into the module by name (dtype converted, device kept). A shape mismatch always
// throws; with strict, missing or unexpected keys throw too, listing them.
LoadReport load_module_state(torch::nn::Module& module, const TensorMap& state, bool strict,
                             const std::string& source = "<memory>");

void save_module_safetensors(const torch::nn::Module& module, const std::string& path,
                             const std::map<std::string, std::string>& metadata = {});
LoadReport load_module_safetensors(torch::nn::Module& module, const std::string& path,
                                   bool strict = true);

}  // namespace lf
