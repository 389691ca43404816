// `latentforge sample`: images from a model's own prior (VAE), or from a trained prior (PixelCNN,
// GPT) over a VQ model's codes, class- or sketch-conditioned, at the training grid or larger (a
// sliding window), or from uniformly random codes (`--prior uniform`, a floor to beat).
#include <cstdio>

#include "cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "model_source.h"
#include "models/vector_quantizer.h"
#include "priors/prior.h"
#include "priors/prior_data.h"
#include "train/checkpoint.h"

namespace lf::cli {

namespace {

struct SampleCommandOptions {
  ModelSource source;
  std::string prior;  // run folder, or "uniform"
  int64_t count = 64;
  int64_t nrow = 8;
  std::string label;  // --class: a class id, a class name or "all"
  std::string cond;   // --cond: condition image(s)
  std::string size;   // --size HxW in code cells
  SamplingOptions sampling;
  bool no_kv_cache = false;
  std::string out;
  std::string codes_out;
};

// "HxW" -> {H, W}
std::pair<int64_t, int64_t> parse_size(const std::string& text) {
  const auto x = text.find('x');
  try {
    if (x != std::string::npos) {
      size_t used_h = 0, used_w = 0;
      const int64_t h = std::stoll(text.substr(0, x), &used_h);
      const int64_t w = std::stoll(text.substr(x + 1), &used_w);
      if (used_h == x && used_w == text.size() - x - 1 && h > 0 && w > 0 && h <= 1024 && w <= 1024)
        return {h, w};
    }
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("[sample] --size {}: expected HxW in code cells, e.g. 7x14", text));
}

// The classes asked for: one per sample.
torch::Tensor parse_labels(const std::string& text, int64_t n, int64_t classes,
                           const std::vector<std::string>& names) {
  if (text.empty() || text == "all") return torch::arange(n, torch::kInt64).remainder(classes);
  int64_t label = -1;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) label = static_cast<int64_t>(i);
  if (label < 0) {
    try {
      size_t used = 0;
      label = std::stoll(text, &used);
      if (used != text.size()) label = -1;
    } catch (const std::exception&) {
      label = -1;
    }
  }
  if (label < 0 || label >= classes)
    throw Error(fmt::format("[sample] --class {}: expected all, a class 0..{} or a class name{}",
                            text, classes - 1, names.empty() ? "" : " (" + names[0] + ", ...)"));
  return torch::full({n}, label, torch::kInt64);
}

// The code grid a VQ model gives for its training images.
std::pair<int64_t, int64_t> training_grid(AutoencoderImpl& stage1, const Config& config,
                                          torch::Device device) {
  auto spec = DatasetSpec::from_config(config.has("data") ? config.sub("data") : Config());
  spec.limit = 1;
  const auto image = open_dataset(spec)->get_batch({0}).images.to(device);
  torch::NoGradGuard no_grad;
  const auto indices = stage1.encode(image).at("indices");
  return {indices.size(1), indices.size(2)};
}

void run_sample(const SampleCommandOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  const torch::Device device = parse_device(globals.device);
  prepare_output(o.out);
  if (o.prior.empty()) {  // the model's own prior
    if (!o.label.empty() || !o.cond.empty() || !o.size.empty() || !o.codes_out.empty())
      throw Error("[sample] --class, --cond, --size and --codes-out need --prior");
    if (o.source.model.empty() && o.source.config.empty())
      throw Error("[sample] give --model RUN (a VAE), or --prior RUN (a prior over a VQ model)");
    auto loaded = open_model_source(o.source, device);
    torch::NoGradGuard no_grad;
    write_images(o.out, loaded.model->sample(o.count).clamp(-1, 1).to(torch::kCPU), o.nrow);
    return;
  }

  SamplingOptions sampling = o.sampling;
  sampling.kv_cache = !o.no_kv_cache;
  auto generator = make_generator(globals.seed);
  torch::Tensor codes, labels;
  int64_t prior_codes = 0;  // the codebook size the prior was trained on
  ModelSource stage1_source = o.source;
  if (o.prior == "uniform") {  // uniformly random codes: the floor any prior must beat
    if (!o.label.empty() || !o.cond.empty())
      throw Error("[sample] --prior uniform takes no --class or --cond");
    auto stage1 = open_model_source(stage1_source, device);
    const int64_t k = codebook_size(*stage1.model);
    if (k == 0)
      throw Error(fmt::format("[sample] a {} model has no codebook (expected a VQ model)",
                              stage1.model->kind()));
    auto [h, w] =
        o.size.empty() ? training_grid(*stage1.model, stage1.config, device) : parse_size(o.size);
    codes = torch::randint(k, {o.count, h, w}, generator, torch::kInt64);
  } else {
    auto loaded = load_trainable(o.prior, device);
    auto prior = std::dynamic_pointer_cast<PriorImpl>(loaded.model);
    if (!prior)
      throw Error(
          fmt::format("[sample] --prior {}: holds a {} model, expected a prior (gpt, "
                      "pixelcnn) or 'uniform'",
                      o.prior, loaded.model->kind()));
    const auto stages = PriorStages::from_config(loaded.config);
    if (stage1_source.model.empty() && stage1_source.config.empty())
      stage1_source.model = stages.stage1;  // the prior's own first stage
    PriorCondition cond;
    torch::Tensor sketch_labels;  // the classes of the images the sketches came from, if known
    if (prior->num_classes() > 0) {
      const auto spec = DatasetSpec::from_config(
          loaded.config.has("data") ? loaded.config.sub("data") : Config());
      std::vector<std::string> names;
      try {
        names = open_dataset(spec)->class_names();
      } catch (const Error&) {
      }
      cond.labels = parse_labels(o.label, o.count, prior->num_classes(), names);
    } else if (!o.label.empty()) {
      throw Error(
          fmt::format("[sample] --prior {}: not class-conditional, so --class does not "
                      "apply",
                      o.prior));
    }
    if (prior->cond_num_codes() > 0) {
      if (o.cond.empty())
        throw Error(
            fmt::format("[sample] --prior {}: image-conditional; give --cond SKETCH.png "
                        "(the {} of an image, e.g. from `latentforge edges`)",
                        o.prior, stages.cond_transform));
      auto cond_stage = load_model(stages.cond_stage, device);
      const auto sketches = read_images(o.cond, model_in_channels(cond_stage.config)).to(device);
      torch::NoGradGuard no_grad;
      const auto sketch_codes = cond_stage.model->encode(sketches).at("indices");
      const auto which = torch::arange(o.count, torch::kInt64).remainder(sketch_codes.size(0));
      cond.cond_codes = sketch_codes.index_select(0, which.to(device));
      if (is_safetensors_path(o.cond)) {  // sketches from `edges --first N` carry their classes
        auto file = load_safetensors(o.cond);
        if (file.count("labels") && file.at("labels").size(0) == sketch_codes.size(0))
          sketch_labels = file.at("labels").index_select(0, which);
      }
    } else if (!o.cond.empty()) {
      throw Error(
          fmt::format("[sample] --prior {}: not image-conditional, so --cond does not "
                      "apply",
                      o.prior));
    }
    auto [h, w] =
        o.size.empty() ? std::make_pair(prior->grid()[0], prior->grid()[1]) : parse_size(o.size);
    if (cond.cond_codes.defined() && o.size.empty()) {
      h = cond.cond_codes.size(1);
      w = cond.cond_codes.size(2);
    }
    prior_codes = prior->num_codes();
    codes = prior->sample(o.count, h, w, cond, sampling, generator);
    labels = cond.labels.defined() ? cond.labels : sketch_labels;
  }

  auto stage1 = open_model_source(stage1_source, device);
  const int64_t k = codebook_size(*stage1.model);
  if (prior_codes > 0 && k != prior_codes)
    throw Error(
        fmt::format("[sample] --model: a {} model with {} codes, but the prior was trained "
                    "on {} codes; give the prior's own stage 1",
                    stage1.model->kind(), k, prior_codes));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> images;
  for (int64_t begin = 0; begin < codes.size(0); begin += 256)
    images.push_back(
        stage1.model->decode({{"indices", codes.slice(0, begin, begin + 256).to(device)}})
            .clamp(-1, 1)
            .to(torch::kCPU));
  const auto all = torch::cat(images);
  std::map<std::string, torch::Tensor> code_file = {{"indices", codes.to(torch::kCPU)}};
  if (labels.defined()) code_file["labels"] = labels.to(torch::kCPU);
  if (!o.codes_out.empty()) {
    prepare_output(o.codes_out);
    save_safetensors(o.codes_out, code_file, {{"prior", o.prior}});
  }
  if (is_safetensors_path(o.out)) {
    code_file["images"] = all.contiguous();
    save_safetensors(o.out, code_file, {{"prior", o.prior}});
  } else {
    write_images(o.out, all, o.nrow);
  }
}

}  // namespace

void register_sample(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<SampleCommandOptions>();
  auto* cmd = app.add_subcommand(
      "sample", "generate images: a VAE's own prior, or a trained prior over a VQ model's codes");
  add_model_source(cmd, o->source, /*required=*/false);
  cmd->add_option("--prior", o->prior,
                  "run folder of a prior (gpt, pixelcnn) over --model's codes, or 'uniform' for "
                  "random codes; --model defaults to the prior's stage1");
  cmd->add_option("-n,--n", o->count, "number of images")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--nrow", o->nrow, "images per grid row")->capture_default_str();
  cmd->add_option("--class", o->label,
                  "class-conditional priors: a class id or name, or 'all' (cycles through the "
                  "classes; the default)");
  cmd->add_option("--cond", o->cond,
                  "image-conditional priors: the condition image(s) (sketches; png or "
                  ".safetensors; sample i uses image i mod M)");
  cmd->add_option("--size", o->size,
                  "code grid HxW (default: the training grid); larger grids are sampled with a "
                  "sliding window");
  cmd->add_option("--temperature", o->sampling.temperature)->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "keep the k most likely codes (0 = all)")
      ->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus: keep codes up to this mass (1 = all)")
      ->capture_default_str();
  cmd->add_option("--window-height", o->sampling.window_h,
                  "sliding-window height in code cells (0 = the training grid's)")
      ->capture_default_str();
  cmd->add_flag("--no-kv-cache", o->no_kv_cache, "transformer: recompute every position (slower)");
  cmd->add_option("--codes-out", o->codes_out,
                  "also write the sampled code indices (.safetensors, key 'indices'; decode them "
                  "with `latentforge decode`)");
  cmd->add_option("-o,--out", o->out,
                  "output grid image, or .safetensors (images, indices and labels)")
      ->required();
  cmd->callback([o, &globals] { run_sample(*o, globals); });
}

}  // namespace lf::cli
