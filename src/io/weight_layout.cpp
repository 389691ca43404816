// Weight-name layouts: see weight_layout.h. The diffusers names follow diffusers'
// convert_ldm_vae_checkpoint (scripts/convert_vae_pt_to_diffusers.py), read in reverse.
#include "io/weight_layout.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "core/error.h"

namespace lf {
namespace {

constexpr const char* kWeightLayout = "weight_layout";
const std::string kSdPrefix = "first_stage_model.";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool starts_with_any(const std::string& key, std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes)
    if (starts_with(key, p)) return true;
  return false;
}

// Keys only one of the two namings has.
bool is_diffusers_key(const std::string& key) {
  return starts_with_any(key,
                         {"encoder.down_blocks.", "encoder.mid_block.", "encoder.conv_norm_out.",
                          "decoder.up_blocks.", "decoder.mid_block.", "decoder.conv_norm_out."});
}
bool is_native_key(const std::string& key) {
  return starts_with_any(key, {"encoder.down.", "encoder.mid.", "encoder.norm_out.", "decoder.up.",
                               "decoder.mid.", "decoder.norm_out."});
}
bool has_native_root(const std::string& key) {
  return starts_with_any(
      key, {"encoder.", "decoder.", "quant_conv.", "post_quant_conv.", "quantize.", "loss."});
}

std::vector<std::string> split(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::optional<int64_t> parse_index(const std::string& s) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), digit)) return {};
  return std::strtoll(s.c_str(), nullptr, 10);
}

std::string dotted_from(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) out += (i > from ? "." : "") + parts[i];
  return out;
}

// "norm1.weight", "conv_shortcut.bias", ... of a diffusers ResnetBlock2D -> ours.
std::optional<std::string> resnet_param(const std::string& rest) {
  for (const char* name : {"norm1", "conv1", "norm2", "conv2"})
    for (const char* p : {".weight", ".bias"})
      if (rest == std::string(name) + p) return rest;
  if (rest == "conv_shortcut.weight") return std::string("nin_shortcut.weight");
  if (rest == "conv_shortcut.bias") return std::string("nin_shortcut.bias");
  return {};
}

// "to_q.weight", "query.bias", "to_out.0.weight", "proj_attn.weight", ... -> ours.
std::optional<std::string> attention_param(const std::string& rest) {
  static const std::pair<const char*, const char*> kNames[] = {{"group_norm", "norm"},
                                                               {"to_q", "q"},
                                                               {"query", "q"},
                                                               {"to_k", "k"},
                                                               {"key", "k"},
                                                               {"to_v", "v"},
                                                               {"value", "v"},
                                                               {"to_out.0", "proj_out"},
                                                               {"proj_attn", "proj_out"}};
  for (const auto& [theirs, ours] : kNames)
    for (const char* p : {".weight", ".bias"})
      if (rest == std::string(theirs) + p) return std::string(ours) + p;
  return {};
}

bool is_attention_projection(const std::string& native_key) {
  for (const char* p : {".q.weight", ".k.weight", ".v.weight", ".proj_out.weight"})
    if (native_key.size() > std::strlen(p) &&
        native_key.compare(native_key.size() - std::strlen(p), std::string::npos, p) == 0)
      return true;
  return false;
}

class DiffusersMapper {
 public:
  DiffusersMapper(const TensorMap& file, const std::string& source) : source_(source) {
    for (const auto& [key, tensor] : file) {
      const auto parts = split(key);
      if (parts.size() > 3 && parts[0] == "decoder" && parts[1] == "up_blocks")
        if (auto i = parse_index(parts[2])) num_up_ = std::max(num_up_, *i + 1);
    }
  }

  // Our name for a diffusers key; nullopt when it has none.
  std::optional<std::string> map(const std::string& key) const {
    if (starts_with_any(key, {"quant_conv.", "post_quant_conv."}) ||
        key == "quantize.embedding.weight")
      return key;
    const auto parts = split(key);
    if (parts.size() < 3 || (parts[0] != "encoder" && parts[0] != "decoder")) return {};
    const std::string& coder = parts[0];
    const std::string rest1 = dotted_from(parts, 1);
    for (const char* conv : {"conv_in", "conv_out"})
      for (const char* p : {".weight", ".bias"})
        if (rest1 == std::string(conv) + p) return key;
    if (rest1 == "conv_norm_out.weight" || rest1 == "conv_norm_out.bias")
      return coder + ".norm_out." + parts[2];
    if (parts[1] == "mid_block" && parts.size() > 4) {
      const auto j = parse_index(parts[3]);
      const std::string rest = dotted_from(parts, 4);
      if (parts[2] == "resnets" && j && *j < 2)
        if (auto p = resnet_param(rest))
          return coder + ".mid.block_" + std::to_string(*j + 1) + "." + *p;
      if (parts[2] == "attentions" && j && *j == 0)
        if (auto p = attention_param(rest)) return coder + ".mid.attn_1." + *p;
      return {};
    }
    const bool down = coder == "encoder" && parts[1] == "down_blocks";
    const bool up = coder == "decoder" && parts[1] == "up_blocks";
    if ((!down && !up) || parts.size() < 6) return {};
    const auto i = parse_index(parts[2]), j = parse_index(parts[4]);
    if (!i || !j) return {};
    const std::string level = down ? coder + ".down." + std::to_string(*i)
                                   : coder + ".up." + std::to_string(num_up_ - 1 - *i);
    const std::string rest = dotted_from(parts, 5);
    if (parts[3] == "resnets")
      if (auto p = resnet_param(rest)) return level + ".block." + std::to_string(*j) + "." + *p;
    if (parts[3] == "attentions")
      if (auto p = attention_param(rest)) return level + ".attn." + std::to_string(*j) + "." + *p;
    const char* sampler = down ? "downsamplers" : "upsamplers";
    if (parts[3] == sampler && *j == 0 && (rest == "conv.weight" || rest == "conv.bias"))
      return level + (down ? ".downsample." : ".upsample.") + rest;
    return {};
  }

  TensorMap apply(const TensorMap& file) const {
    TensorMap out;
    std::map<std::string, std::string> origin;
    for (const auto& [key, tensor] : file) {
      const auto native = map(key);
      if (!native)
        fail(kWeightLayout, "{}: diffusers key '{}' has no counterpart in the original layout",
             source_, key);
      if (const auto it = origin.find(*native); it != origin.end())
        fail(kWeightLayout, "{}: diffusers keys '{}' and '{}' both map to '{}'", source_,
             it->second, key, *native);
      origin.emplace(*native, key);
      out.emplace(*native, is_attention_projection(*native) ? conv_weight(key, tensor) : tensor);
    }
    return out;
  }

 private:
  // Linear [C_out, C_in] (or an older [C_out, C_in, 1]) -> 1x1 convolution [C_out, C_in, 1, 1].
  torch::Tensor conv_weight(const std::string& key, const torch::Tensor& w) const {
    if (w.dim() == 2) return w.reshape({w.size(0), w.size(1), 1, 1});
    if (w.dim() == 3 && w.size(2) == 1) return w.unsqueeze(-1);
    if (w.dim() == 4 && w.size(2) == 1 && w.size(3) == 1) return w;
    fail(kWeightLayout, "{}: '{}': expected an attention weight [C, C] or [C, C, 1, 1], got {}",
         source_, key, shape_str(w.sizes()));
  }

  std::string source_;
  int64_t num_up_ = 0;
};

// Classifies keys that have no container prefix and maps them.
NativeWeights map_unprefixed(const TensorMap& file, const std::string& source) {
  const std::string* diffusers = nullptr;
  const std::string* native = nullptr;
  for (const auto& [key, tensor] : file) {
    if (!diffusers && is_diffusers_key(key)) diffusers = &key;
    if (!native && is_native_key(key)) native = &key;
  }
  if (diffusers && native)
    fail(kWeightLayout, "{}: mixes diffusers names ('{}') with original names ('{}')", source,
         *diffusers, *native);
  NativeWeights out;
  if (diffusers) {
    out.layout = "diffusers";
    out.tensors = DiffusersMapper(file, source).apply(file);
    return out;
  }
  if (!native) {
    std::string examples;
    size_t n = 0;
    for (const auto& [key, tensor] : file) {
      if (n++ == 3) break;
      examples += (examples.empty() ? "'" : ", '") + key + "'";
    }
    fail(kWeightLayout,
         "{}: no autoencoder weights recognised (expected encoder.down.* as in taming/ldm, "
         "first_stage_model.* as in Stable Diffusion, or encoder.down_blocks.* as in diffusers); "
         "{} keys, e.g. {}",
         source, file.size(), examples.empty() ? "none" : examples);
  }
  out.layout = "native";
  for (const auto& [key, tensor] : file) {
    if (has_native_root(key))
      out.tensors.emplace(key, tensor);
    else
      out.ignored.push_back(key);
  }
  return out;
}

}  // namespace

NativeWeights to_native_layout(const TensorMap& file, const std::string& source) {
  TensorMap inner;
  std::vector<std::string> ignored;
  for (const auto& [key, tensor] : file) {
    if (starts_with(key, kSdPrefix))
      inner.emplace(key.substr(kSdPrefix.size()), tensor);
    else
      ignored.push_back(key);
  }
  if (inner.empty()) return map_unprefixed(file, source);
  for (const auto& key : ignored)
    if (is_native_key(key) || is_diffusers_key(key))
      fail(kWeightLayout,
           "{}: has both first_stage_model.* keys and autoencoder keys without the prefix "
           "('{}')",
           source, key);
  NativeWeights out = map_unprefixed(inner, source + " (first_stage_model.*)");
  out.layout = "first_stage_model";
  for (auto& key : out.ignored) key = kSdPrefix + key;
  out.ignored.insert(out.ignored.end(), ignored.begin(), ignored.end());
  std::sort(out.ignored.begin(), out.ignored.end());
  return out;
}

}  // namespace lf
