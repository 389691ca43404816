// The codebook page's jobs: see codebook_jobs.h.
#include "server/codebook_jobs.h"

#include <cmath>

#include "core/error.h"
#include "eval/image_metrics.h"
#include "models/vector_quantizer.h"
#include "server/image_views.h"

namespace lf::serve {

namespace {

constexpr int64_t kMaxCodeSide = 256;  // a code map of at most 256 x 256 cells

int64_t vq_codebook_size(const LoadedModel& loaded, const ServedModel& model) {
  const int64_t k = codebook_size(*loaded.model);
  if (k == 0) fail("serve", "model '{}' is a {}: it has no codebook", model.id, model.kind);
  return k;
}

}  // namespace

CodeMap CodeMap::from_json(const Json& body) {
  CodeMap map;
  auto side = [&](const char* key) {
    if (!body.is_object() || !body.contains(key) || !body[key].is_number_integer())
      fail("serve", "code map: expected an integer '{}'", key);
    const int64_t v = body[key].get<int64_t>();
    if (v < 1 || v > kMaxCodeSide)
      fail("serve", "code map: {} = {}, expected 1..{}", key, v, kMaxCodeSide);
    return v;
  };
  map.h = side("h");
  map.w = side("w");
  if (!body.contains("indices") || !body["indices"].is_array())
    fail("serve", "code map: expected 'indices', an array of h*w integers");
  const Json& indices = body["indices"];
  if (static_cast<int64_t>(indices.size()) != map.h * map.w)
    fail("serve", "code map: {} indices for {}x{} cells, expected {}", indices.size(), map.h, map.w,
         map.h * map.w);
  map.indices.reserve(indices.size());
  for (const auto& v : indices) {
    if (!v.is_number_integer()) fail("serve", "code map: indices must be integers");
    map.indices.push_back(v.get<int64_t>());
  }
  return map;
}

Json encode_codes(const ServedModel& model, const ImageSource& image, const JobSettings& settings,
                  ModelCache& cache, JobContext& context) {
  return with_clean_errors(model, "encode", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    const int64_t k = vq_codebook_size(loaded, model);
    context.progress(0.2, "reading the image");
    const auto test = image.test_index >= 0 ? open_test_split(loaded.config) : nullptr;
    const torch::Tensor x =
        load_image_source(image, loaded.config, test.get(), settings.max_side, "image");
    context.progress(0.4, "encoding");
    torch::NoGradGuard no_grad;
    const torch::Tensor indices =
        loaded.model->encode(x.unsqueeze(0).to(settings.device)).at("indices");
    context.progress(0.7, "decoding");
    const torch::Tensor y =
        loaded.model->decode({{"indices", indices}}).clamp(-1, 1).to(torch::kCPU)[0];
    const torch::Tensor flat = indices[0].to(torch::kCPU).contiguous().view(-1);
    std::vector<int64_t> cells(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
    const int64_t scale = view_scale(x.size(1), x.size(2));
    return {{"h", indices.size(1)},
            {"w", indices.size(2)},
            {"num_codes", k},
            {"indices", cells},
            {"input", png_base64(x, scale)},
            {"reconstruction", png_base64(y, scale)},
            {"view_scale", scale},
            {"psnr", psnr_per_image(x.unsqueeze(0), y.unsqueeze(0))[0].item<double>()}};
  });
}

Json decode_codes(const ServedModel& model, const CodeMap& codes, const JobSettings& settings,
                  ModelCache& cache, JobContext& context) {
  return with_clean_errors(model, "decode", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.05, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    const int64_t k = vq_codebook_size(loaded, model);
    for (size_t i = 0; i < codes.indices.size(); ++i)
      if (codes.indices[i] < 0 || codes.indices[i] >= k)
        fail("serve", "code map: cell {} holds code {}, expected 0..{}", i, codes.indices[i],
             k - 1);
    context.progress(0.3, "decoding");
    const torch::Tensor indices =
        torch::tensor(codes.indices, torch::kInt64).view({1, codes.h, codes.w}).to(settings.device);
    torch::NoGradGuard no_grad;
    const torch::Tensor y =
        loaded.model->decode({{"indices", indices}}).clamp(-1, 1).to(torch::kCPU)[0];
    const int64_t scale = view_scale(y.size(1), y.size(2));
    return {{"image", png_base64(y, scale)},
            {"view_scale", scale},
            {"width", y.size(2)},
            {"height", y.size(1)}};
  });
}

Json code_usage(const ServedModel& model, int64_t limit, const JobSettings& settings,
                ModelCache& cache, std::map<std::string, Json>& memo, JobContext& context) {
  return with_clean_errors(model, "code_usage", [&]() -> Json {
    apply_job_threads(settings);
    context.progress(0.02, "loading model");
    LoadedModel& loaded = cache.autoencoder(model.dir, settings.device);
    const int64_t k = vq_codebook_size(loaded, model);
    const auto test = open_test_split(loaded.config);
    if (!test) fail("serve", "model '{}' has no test images to count codes over", model.id);
    const int64_t n = limit > 0 ? std::min(limit, test->size()) : test->size();
    const std::string key = loaded.weights_path + "|" + std::to_string(n);
    if (const auto it = memo.find(key); it != memo.end()) return it->second;
    torch::Tensor counts = torch::zeros({k}, torch::kInt64);
    int64_t h = 0, w = 0;
    constexpr int64_t kBatch = 256;
    torch::NoGradGuard no_grad;
    for (int64_t begin = 0; begin < n; begin += kBatch) {
      context.progress(0.05 + 0.9 * begin / n, "counting codes");
      std::vector<int64_t> which;
      for (int64_t i = begin; i < std::min(n, begin + kBatch); ++i) which.push_back(i);
      torch::Tensor x = test->get_batch(which).images;
      std::vector<torch::Tensor> inputs;
      for (int64_t i = 0; i < x.size(0); ++i)
        inputs.push_back(to_model_input(x[i], loaded.config, settings.max_side));
      const torch::Tensor indices =
          loaded.model->encode(torch::stack(inputs).to(settings.device)).at("indices");
      h = indices.size(1);
      w = indices.size(2);
      counts += torch::bincount(indices.to(torch::kCPU).reshape(-1), {}, k);
    }
    const torch::Tensor p =
        counts.to(torch::kFloat64) / std::max<int64_t>(1, counts.sum().item<int64_t>());
    const double entropy = -(p * p.clamp_min(1e-300).log()).sum().item<double>();
    const int64_t used = counts.gt(0).sum().item<int64_t>();
    std::vector<int64_t> list(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + k);
    Json out = {{"num_codes", k},
                {"counts", list},
                {"images", n},
                {"cells", counts.sum().item<int64_t>()},
                {"used", used},
                {"dead", k - used},
                {"perplexity", std::exp(entropy)},
                {"grid", {h, w}}};
    if (memo.size() >= 16) memo.clear();
    memo[key] = out;
    return out;
  });
}

}  // namespace lf::serve
