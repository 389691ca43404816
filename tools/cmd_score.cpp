// `latentforge score`: Frechet distance of generated samples to real test images, and accuracy on
// the classes they were asked to show, in the features of a trained classifier run.
#include <cstdio>

#include "cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "eval/sample_score.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "train/checkpoint.h"

namespace lf::cli {

namespace {

struct ScoreCommandOptions {
  std::string classifier;
  std::string samples;
  std::string real_split = "test";
  int64_t real_limit = 0;
  bool real_halves = false;
  int64_t batch_size = 256;
  std::string out;
};

void run_score(const ScoreCommandOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  if (o.samples.empty() && !o.real_halves)
    fail("score", "expected a SAMPLES.safetensors to score (or --real-halves for the noise floor)");
  if (!o.samples.empty() && !is_safetensors_path(o.samples))
    fail("score", "{}: expected a .safetensors file with an \"images\" tensor [N, C, H, W]",
         o.samples);
  const auto device = parse_device(globals.device);
  auto loaded = load_trainable(o.classifier, device);
  auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(loaded.model);
  if (!classifier)
    fail("score",
         "{}: holds a {} model; expected a classifier run (latentforge train --config "
         "configs/classifier_fashion.yaml)",
         o.classifier, loaded.model->kind());

  // Samples and labels first: a bad file fails before the real set is read.
  torch::Tensor samples, labels;
  if (!o.samples.empty()) {
    samples = read_images(o.samples);
    SafetensorsReader reader(o.samples);
    if (reader.contains("labels")) labels = reader.get("labels");
  }
  DatasetSpec spec = loaded.config.has("data") ? DatasetSpec::from_config(loaded.config.sub("data"))
                                               : DatasetSpec{};
  spec.split = o.real_split;
  spec.limit = o.real_limit;
  const auto real = open_dataset(spec);

  ScoreOptions options;
  options.batch_size = o.batch_size;
  options.real_limit = o.real_limit;
  options.real_halves = o.real_halves;
  Json json = samples.defined()
                  ? score_samples(*classifier, samples, labels, *real, device, options)
                  : score_real_halves(*classifier, *real, device, options);
  json["classifier"] = o.classifier;
  if (!o.samples.empty()) json["samples"] = o.samples;
  json["real"] = real->describe();
  if (!o.out.empty()) {
    prepare_output(o.out);
    write_file_atomic(o.out, json.dump(2) + "\n");
  }
  std::printf("%s\n", json.dump(2).c_str());
}

}  // namespace

void register_score(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<ScoreCommandOptions>();
  auto* cmd = app.add_subcommand(
      "score",
      "Frechet distance of generated samples to real test images (and accuracy on their labels) "
      "in a trained classifier's features, as JSON");
  cmd->add_option("--classifier", o->classifier, "classifier run folder (or its model.safetensors)")
      ->required();
  cmd->add_option("samples", o->samples,
                  ".safetensors with \"images\" [N, C, H, W] in [-1, 1] and optional \"labels\" "
                  "[N] int64 (the classes asked for)");
  cmd->add_option("--real-split", o->real_split,
                  "split of the classifier's dataset to compare with")
      ->capture_default_str();
  cmd->add_option("--real-limit", o->real_limit, "first N real images only (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--real-halves", o->real_halves,
                "also report fd_real_halves: the distance between two halves of the real set (the "
                "noise floor)");
  cmd->add_option("--batch-size", o->batch_size, "images per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--out", o->out, "also write the JSON here (atomically)");
  cmd->callback([o, &globals] { run_score(*o, globals); });
}

}  // namespace lf::cli
