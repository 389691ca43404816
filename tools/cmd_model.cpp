// Subcommands that use a trained model: reconstruct, encode, decode, interpolate.
#include "cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "model_source.h"
#include "models/reduced_precision.h"
#include "models/vae.h"
#include "train/checkpoint.h"

namespace lf::cli {

namespace {

struct ModelCommandOptions {
  ModelSource source;
  std::vector<std::string> inputs;
  std::string out;
  int64_t count = 64;
  int64_t nrow = 8;
  int64_t steps = 8;
  std::string precision = "fp32";
};

void add_model_option(CLI::App* cmd, ModelCommandOptions& o) {
  add_model_source(cmd, o.source);
}

void add_precision_option(CLI::App* cmd, ModelCommandOptions& o) {
  cmd->add_option("--precision", o.precision,
                  "fp32 | bf16 | fp16 (CUDA only); an output holding NaN or Inf in reduced "
                  "precision is computed again in fp32")
      ->capture_default_str();
}

// The model's images for one command in the chosen precision, with the fp32 retry said aloud.
torch::Tensor run_in_precision(const ModelCommandOptions& o, torch::Device device,
                               const std::function<torch::Tensor()>& compute) {
  const auto result = run_with_float32_retry(compute, device, parse_precision(o.precision, device));
  if (result.retried)
    spdlog::warn("the {} output held NaN or Inf: computed again in fp32", o.precision);
  return result.output;
}

LoadedModel open_model(const ModelCommandOptions& o, const GlobalOptions& globals,
                       torch::Device& device) {
  apply_globals(globals);
  device = parse_device(globals.device);
  return open_model_source(o.source, device);
}

// Image files are converted to the channels the model was trained on.
torch::Tensor read_input(const std::string& path, const Config& config) {
  return read_images(path, model_in_channels(config));
}

}  // namespace

void register_model_commands(CLI::App& app, const GlobalOptions& globals) {
  {
    auto o = std::make_shared<ModelCommandOptions>();
    auto* cmd = app.add_subcommand("reconstruct",
                                   "encode and decode images (png/jpg or .safetensors 'images')");
    add_model_option(cmd, *o);
    add_tile_options(cmd, o->source);
    add_precision_option(cmd, *o);
    cmd->add_option("input", o->inputs, "input image or .safetensors")->required()->expected(1);
    cmd->add_option("-o,--out", o->out, "output image (a grid when N > 1) or .safetensors")
        ->required();
    cmd->callback([o, &globals] {
      torch::Device device(torch::kCPU);
      auto loaded = open_model(*o, globals, device);
      torch::NoGradGuard no_grad;
      const auto x = read_input(o->inputs[0], loaded.config).to(device);
      const auto y = run_in_precision(*o, device, [&] { return loaded.model->reconstruct(x); })
                         .clamp(-1, 1)
                         .to(torch::kCPU);
      report_memory_plan(loaded);
      prepare_output(o->out);
      write_images(o->out, y, o->nrow);
    });
  }
  {
    auto o = std::make_shared<ModelCommandOptions>();
    auto* cmd = app.add_subcommand(
        "encode", "images -> .safetensors of latents (VQ: indices + latents; VAE: mean + logvar)");
    add_model_option(cmd, *o);
    add_tile_options(cmd, o->source);
    cmd->add_option("input", o->inputs, "input image or .safetensors")->required()->expected(1);
    cmd->add_option("-o,--out", o->out, "output .safetensors")->required();
    cmd->callback([o, &globals] {
      if (!is_safetensors_path(o->out))
        throw Error(fmt::format("[encode] {}: expected a .safetensors output", o->out));
      torch::Device device(torch::kCPU);
      auto loaded = open_model(*o, globals, device);
      torch::NoGradGuard no_grad;
      const auto x = read_input(o->inputs[0], loaded.config).to(device);
      std::map<std::string, torch::Tensor> out;
      for (const auto& [k, v] : loaded.model->encode(x)) out[k] = v.to(torch::kCPU).contiguous();
      report_memory_plan(loaded);
      prepare_output(o->out);
      save_safetensors(o->out, out, {{"model", loaded.model->kind()}});
    });
  }
  {
    auto o = std::make_shared<ModelCommandOptions>();
    auto* cmd = app.add_subcommand("decode", ".safetensors of latents or indices -> images");
    add_model_option(cmd, *o);
    add_tile_options(cmd, o->source);
    add_precision_option(cmd, *o);
    cmd->add_option("input", o->inputs, ".safetensors written by encode (keys indices or latents)")
        ->required()
        ->expected(1);
    cmd->add_option("-o,--out", o->out, "output image (a grid when N > 1) or .safetensors")
        ->required();
    cmd->add_option("--nrow", o->nrow, "images per grid row")->capture_default_str();
    cmd->callback([o, &globals] {
      torch::Device device(torch::kCPU);
      auto loaded = open_model(*o, globals, device);
      torch::NoGradGuard no_grad;
      TensorMap code;
      for (auto& [k, v] : load_safetensors(o->inputs[0])) code[k] = v.to(device);
      const auto y = run_in_precision(*o, device, [&] { return loaded.model->decode(code); })
                         .clamp(-1, 1)
                         .to(torch::kCPU);
      report_memory_plan(loaded);
      prepare_output(o->out);
      write_images(o->out, y, o->nrow);
    });
  }
  {
    auto o = std::make_shared<ModelCommandOptions>();
    auto* cmd = app.add_subcommand("interpolate",
                                   "decode a straight line between two images' latents (VAE)");
    add_model_option(cmd, *o);
    cmd->add_option("inputs", o->inputs, "two images (or .safetensors with one image each)")
        ->required()
        ->expected(2);
    cmd->add_option("--steps", o->steps, "images along the line, ends included")
        ->capture_default_str()
        ->check(CLI::Range(2, 256));
    cmd->add_option("-o,--out", o->out, "output strip image or .safetensors")->required();
    cmd->callback([o, &globals] {
      torch::Device device(torch::kCPU);
      auto loaded = open_model(*o, globals, device);
      auto* vae = dynamic_cast<VAEImpl*>(loaded.model.get());
      if (!vae)
        throw Error(fmt::format("[interpolate] a {} model; interpolation needs a VAE",
                                loaded.model->kind()));
      torch::NoGradGuard no_grad;
      const auto a = read_input(o->inputs[0], loaded.config).to(device);
      const auto b = read_input(o->inputs[1], loaded.config).to(device);
      if (a.size(0) != 1 || b.size(0) != 1)
        throw Error("[interpolate] expected one image in each input");
      const auto y = vae->interpolate(a, b, o->steps).clamp(-1, 1).to(torch::kCPU);
      prepare_output(o->out);
      write_images(o->out, y, o->steps);
    });
  }
}

}  // namespace lf::cli
