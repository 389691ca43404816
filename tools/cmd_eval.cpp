// `latentforge eval`: MSE / PSNR / SSIM (and VQ code usage) of a trained model over a dataset
// split.
#include <cstdio>

#include "cli.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "eval/evaluate.h"
#include "io/atomic_file.h"
#include "model_source.h"
#include "train/checkpoint.h"

namespace lf::cli {

void register_eval(CLI::App& app, const GlobalOptions& globals) {
  struct Options {
    ModelSource source;
    std::string out;
    DatasetSpec data;
    bool data_given = false;
    int64_t batch_size = 256;
  };
  auto o = std::make_shared<Options>();
  o->data.split = "test";
  auto* cmd = app.add_subcommand(
      "eval", "MSE, PSNR, SSIM and codebook usage over a dataset split, as JSON");
  add_model_source(cmd, o->source);
  cmd->add_option("--data", o->data.root,
                  "dataset folder (default: the one the model was trained on)");
  cmd->add_option("--split", o->data.split, "train or test")->capture_default_str();
  cmd->add_option("--limit", o->data.limit, "first N images only (0 = all)")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per forward pass")->capture_default_str();
  cmd->add_option("-o,--out", o->out, "also write the JSON here");
  cmd->callback([o, &globals] {
    apply_globals(globals);
    const auto device = parse_device(globals.device);
    auto loaded = open_model_source(o->source, device);
    DatasetSpec spec = loaded.config.has("data")
                           ? DatasetSpec::from_config(loaded.config.sub("data"))
                           : DatasetSpec{};
    if (!o->data.root.empty()) spec.root = o->data.root;
    spec.split = o->data.split;
    spec.limit = o->data.limit;
    const auto data = open_dataset(spec);
    auto result = evaluate(*loaded.model, *data, device, o->batch_size);
    Json json = result.to_json();
    json["model"] = o->source.model.empty() ? o->source.weights : o->source.model;
    json["data"] = data->describe();
    if (!o->out.empty()) {
      prepare_output(o->out);
      write_file_atomic(o->out, json.dump(2) + "\n");
    }
    std::printf("%s\n", json.dump(2).c_str());
  });
}

}  // namespace lf::cli
