// Code datasets and the per-run cache of encoded splits.
#include "priors/code_dataset.h"

#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "models/saved_model.h"
#include "models/vector_quantizer.h"

namespace fs = std::filesystem;

namespace lf {

CodeDataset::CodeDataset(torch::Tensor codes, torch::Tensor labels, torch::Tensor cond_codes,
                         int64_t num_classes, std::string description)
    : codes_(std::move(codes)),
      labels_(std::move(labels)),
      cond_codes_(std::move(cond_codes)),
      num_classes_(num_classes),
      description_(std::move(description)) {
  if (codes_.dim() != 3 || codes_.scalar_type() != torch::kInt64)
    fail("CodeDataset", "codes: expected [N, h, w] int64, got {}", shape_str(codes_.sizes()));
  if (labels_.dim() != 1 || labels_.size(0) != codes_.size(0))
    fail("CodeDataset", "labels: expected [{}], got {}", codes_.size(0),
         shape_str(labels_.sizes()));
  if (cond_codes_.defined() && (cond_codes_.dim() != 3 || cond_codes_.size(0) != codes_.size(0)))
    fail("CodeDataset", "cond_codes: expected [{}, hc, wc], got {}", codes_.size(0),
         shape_str(cond_codes_.sizes()));
}

std::vector<int64_t> CodeDataset::image_shape() const {
  return {1, codes_.size(1), codes_.size(2)};
}

torch::Tensor CodeDataset::get_image(int64_t) const {
  fail("CodeDataset::get_image", "{}: a code dataset holds code maps, not images", description_);
}

int64_t CodeDataset::get_label(int64_t index) const {
  check_index(index, "CodeDataset::get_label");
  return labels_[index].item<int64_t>();
}

Batch CodeDataset::get_batch(const std::vector<int64_t>& indices) const {
  for (auto i : indices) check_index(i, "CodeDataset::get_batch");
  const auto index = torch::tensor(indices, torch::kInt64);
  Batch batch;
  batch.indices = index;
  batch.codes = codes_.index_select(0, index);
  batch.labels = labels_.index_select(0, index);
  if (cond_codes_.defined()) batch.cond_codes = cond_codes_.index_select(0, index);
  return batch;
}

torch::Tensor encode_codes(AutoencoderImpl& stage1, const Dataset& data, torch::Device device,
                           int64_t batch_size) {
  torch::NoGradGuard no_grad;
  stage1.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(data.size(), begin + batch_size); ++i)
      indices.push_back(i);
    const auto code = stage1.encode(data.get_batch(indices).images.to(device));
    const auto it = code.find("indices");
    if (it == code.end())
      fail("encode_codes",
           "a {} model gives no code indices; a prior needs a VQ first stage "
           "(vqvae, vqgan)",
           stage1.kind());
    parts.push_back(it->second.to(torch::kCPU));
  }
  return torch::cat(parts);
}

EncodedSplit cached_codes(const std::string& stage1_path, const DatasetSpec& spec,
                          torch::Device device) {
  auto loaded = load_model(stage1_path, device);
  EncodedSplit out;
  out.num_codes = codebook_size(*loaded.model);
  if (out.num_codes == 0)
    fail("cached_codes",
         "{}: a {} model has no codebook; a prior needs a VQ first stage (vqvae, "
         "vqgan)",
         stage1_path, loaded.model->kind());
  // The cache key: which weights (path, size, time) and which data.
  const fs::path weights = fs::absolute(loaded.weights_path);
  const auto stamp = fs::last_write_time(weights).time_since_epoch().count();
  const std::string key_text = fmt::format("{}|{}|{}|{}", weights.string(), fs::file_size(weights),
                                           stamp, spec.to_json().dump());
  const std::string cache =
      fmt::format("{}/codes/{}-{:016x}.safetensors", weights.parent_path().string(), spec.split,
                  std::hash<std::string>{}(key_text));
  auto data = open_dataset(spec);
  out.num_classes = data->num_classes();
  std::error_code ec;
  if (fs::is_regular_file(cache, ec)) {
    auto tensors = load_safetensors(cache);
    if (tensors.count("codes") && tensors.count("labels") &&
        tensors.at("codes").size(0) == data->size()) {
      spdlog::debug("codes of {}: cached in {}", data->describe(), cache);
      out.codes = tensors.at("codes");
      out.labels = tensors.at("labels");
      return out;
    }
    spdlog::warn("{}: stale code cache, encoding again", cache);
  }
  spdlog::info("encoding {} with {} ({} images)", data->describe(), stage1_path, data->size());
  out.codes = encode_codes(*loaded.model, *data, device);
  out.labels = torch::empty({data->size()}, torch::kInt64);
  auto* label = out.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < data->size(); ++i) label[i] = data->get_label(i);
  fs::create_directories(fs::path(cache).parent_path());
  save_safetensors(cache, {{"codes", out.codes}, {"labels", out.labels}},
                   {{"stage1", weights.string()}, {"data", spec.to_json().dump()}});
  return out;
}

}  // namespace lf
