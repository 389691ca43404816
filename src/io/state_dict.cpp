// Name-based weight transfer between modules and files.
#include "io/state_dict.h"

#include "core/error.h"
#include "io/safetensors.h"

namespace lf {

namespace {
std::string name_list(const std::vector<std::string>& names, size_t max_shown = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max_shown) out += fmt::format(" (+{} more)", names.size() - max_shown);
  return out;
}
}  // namespace

std::string LoadReport::summary() const {
  std::string s = fmt::format("loaded {} tensors", loaded);
  if (!missing.empty()) s += "; missing: " + name_list(missing);
  if (!unexpected.empty()) s += "; unexpected: " + name_list(unexpected);
  return s;
}

TensorMap module_state(const torch::nn::Module& module) {
  TensorMap state;
  for (const auto& p : module.named_parameters(true)) state[p.key()] = p.value().detach();
  for (const auto& b : module.named_buffers(true))
    if (b.value().defined()) state[b.key()] = b.value().detach();
  return state;
}

LoadReport load_module_state(torch::nn::Module& module, const TensorMap& state, bool strict,
                             const std::string& source) {
  TensorMap targets;
  for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true))
    if (b.value().defined()) targets[b.key()] = b.value();

  LoadReport report;
  for (const auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != target.sizes())
      fail("load_weights", "{}: '{}' has shape {}, the model expects {}", source, name,
           shape_str(it->second.sizes()), shape_str(target.sizes()));
  }
  for (const auto& [name, tensor] : state)
    if (!targets.count(name)) report.unexpected.push_back(name);
  if (strict && (!report.missing.empty() || !report.unexpected.empty()))
    fail("load_weights", "{}: keys do not match the model: {}", source, report.summary());

  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    target.copy_(it->second.to(target.device(), target.scalar_type()));
    ++report.loaded;
  }
  return report;
}

void save_module_safetensors(const torch::nn::Module& module, const std::string& path,
                             const std::map<std::string, std::string>& metadata) {
  TensorMap state;
  for (const auto& [name, tensor] : module_state(module))
    state[name] = tensor.to(torch::kCPU).contiguous();
  save_safetensors(path, state, metadata);
}

LoadReport load_module_safetensors(torch::nn::Module& module, const std::string& path,
                                   bool strict) {
  return load_module_state(module, load_safetensors(path), strict, path);
}

}  // namespace lf
