// `latentforge import`: an original checkpoint (taming VQGAN, CompVis / Stable Diffusion,
// diffusers; .safetensors or .ckpt) -> a latentforge model folder (config.json +
// model.safetensors).
#include "cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "models/model_import.h"

namespace lf::cli {

void register_import(CLI::App& app, const GlobalOptions& globals) {
  struct Options {
    std::string config, weights, out;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "import", "convert an original checkpoint (taming, CompVis/SD, diffusers) to a model folder");
  cmd->add_option("--config", o->config,
                  "original taming-transformers / CompVis / Stable Diffusion YAML (or a "
                  "latentforge config)")
      ->required();
  cmd->add_option("--weights", o->weights,
                  ".safetensors or .ckpt: taming/CompVis keys, a full SD checkpoint or diffusers")
      ->required();
  cmd->add_option("-o,--out", o->out, "model folder to write (config.json + model.safetensors)")
      ->required();
  cmd->callback([o, &globals] {
    apply_globals(globals);
    const ImportedModel imported = import_model(o->config, o->weights);
    prepare_output(o->out + "/model.safetensors");
    save_model_folder(imported, o->out);
    std::printf("%s: %s, layout %s, %zu tensors loaded, %zu keys ignored -> %s\n",
                o->weights.c_str(), imported.model->kind().c_str(), imported.layout.c_str(),
                imported.report.loaded, imported.ignored.size(), o->out.c_str());
  });
}

}  // namespace lf::cli
