// A whole training run: see training_run.h.
#include "runs/training_run.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "eval/prior_report.h"
#include "eval/run_report.h"
#include "eval/sample_score.h"
#include "io/atomic_file.h"
#include "io/state_dict.h"
#include "priors/prior_data.h"
#include "runs/training_previews.h"
#include "train/run_lock.h"
#include "train/trainable_types.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lf {

namespace {

// The test split, or the training data itself for image folders, which have none.
DatasetPtr test_or_train(const DatasetSpec& spec, const DatasetPtr& train_data) {
  DatasetPtr test = open_test_split(spec);
  return test ? test : train_data;
}

// What the report measures on the test split. Every process of a data-parallel run measures, each
// on its share of the test batches, and all get the reduced result (eval/evaluate.h,
// eval/sample_score.h, eval/prior_report.h); rank 0 then writes it.
struct Measured {
  DatasetPtr test;  // what an autoencoder or a classifier was measured on
  std::shared_ptr<const CodeDataset> prior_test;  // what a prior was measured on
  std::optional<EvalResult> autoencoder;
  Json metrics;  // a prior's or a classifier's
};

Measured measure(const TrainablePtr& model, const DatasetSpec& spec, const DatasetPtr& train_data,
                 const std::optional<PriorStages>& stages, const TrainingRequest& r) {
  Measured measured;
  if (auto prior = std::dynamic_pointer_cast<PriorImpl>(model)) {
    measured.prior_test = open_prior_test_data(*stages, spec, r.device, r.eval_limit).dataset;
    measured.metrics = prior_test_metrics(*prior, *measured.prior_test, r.device);
  } else if (auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(model)) {
    measured.test = test_or_train(spec, train_data);
    measured.metrics = classifier_report(*classifier, *measured.test, r.device, 256, r.eval_limit);
  } else if (auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model)) {
    measured.test = test_or_train(spec, train_data);
    measured.autoencoder = evaluate(*autoencoder, *measured.test, r.device, 256, r.eval_limit);
  }
  return measured;
}

// metrics.json and the pictures of a finished run; returns the metrics.
Json write_report(TrainingOutcome& outcome, const TrainablePtr& model,
                  const std::optional<PriorStages>& stages, const TrainingRequest& r, uint64_t seed,
                  const Measured& measured) {
  const std::string& run_dir = outcome.run_dir;
  if (auto prior = std::dynamic_pointer_cast<PriorImpl>(model)) {
    outcome.files.insert(outcome.files.end(),
                         {"metrics.json", "samples.png", "training_curves.png"});
    return write_prior_report(run_dir, *prior, *stages, *measured.prior_test, r.device, seed,
                              measured.metrics);
  }
  if (std::dynamic_pointer_cast<ClassifierImpl>(model)) {
    plot_training_curves(run_dir + "/log.jsonl", run_dir + "/training_curves.png");
    write_file_atomic(run_dir + "/metrics.json", measured.metrics.dump(2) + "\n");
    outcome.files.insert(outcome.files.end(), {"metrics.json", "training_curves.png"});
    return measured.metrics;
  }
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model);
  if (!autoencoder || !measured.autoencoder) {
    spdlog::info("{}: no report for a {} model", run_dir, model->kind());
    return nullptr;
  }
  const Json metrics =
      write_run_report(run_dir, *autoencoder, *measured.test, r.device, *measured.autoencoder);
  outcome.files.insert(outcome.files.end(),
                       {"metrics.json", "reconstructions.png", "training_curves.png"});
  if (metrics.contains("codebook")) outcome.files.push_back("codebook_usage.png");
  return metrics;
}

}  // namespace

TrainingOutcome run_training(const TrainingRequest& r) {
  TrainingOutcome outcome;
  std::string run_dir = r.run_dir;
  Config config;
  if (r.resume) {
    if (run_dir.empty()) throw Error("[train] resume: the run folder to continue is required");
    config = Config::from_yaml_file(run_dir + "/config.json");
  } else {
    if (r.config.empty())
      throw Error("[train] --config FILE.yaml is required (or --resume RUN_DIR)");
    config = Config::from_yaml_file(r.config);
    if (run_dir.empty()) run_dir = "runs/" + fs::path(r.config).stem().string();
  }
  outcome.run_dir = run_dir;
  for (const auto& assignment : r.overrides) config.set(assignment);
  const uint64_t seed = config.get<uint64_t>("seed", r.seed);
  DataParallel* parallel = r.parallel && r.parallel->world_size() > 1 ? r.parallel : nullptr;
  const bool root = !parallel || parallel->is_root();
  // Each rank draws its own random numbers; rank 0's are a single process's.
  seed_everything(seed + (parallel ? 1000003ull * parallel->rank() : 0));

  // Held from here on: a second trainer on this folder is refused before it changes anything.
  // Only rank 0 of a data-parallel run owns the folder.
  const auto lock = root ? lock_run_dir(run_dir) : nullptr;
  const bool holds_run =
      root && (fs::exists(run_dir + "/checkpoints/latest") || fs::exists(run_dir + "/log.jsonl"));
  if (!r.resume && holds_run && !r.force)
    throw Error(
        fmt::format("[train] {}: holds a run already (use --resume {} to continue, --force to "
                    "start over, or --out)",
                    run_dir, run_dir));
  if (!r.resume && r.force && root) {
    // Remove only what a run writes: the folder may hold other things too.
    fs::remove_all(run_dir + "/checkpoints");
    for (const char* file :
         {"log.jsonl", "model.safetensors", "metrics.json", "reconstructions.png",
          "training_curves.png", "codebook_usage.png", "samples.png", "command.txt"})
      fs::remove(run_dir + "/" + file);
    fs::remove_all(run_dir + "/previews");
  }

  const auto spec = DatasetSpec::from_config(config.has("data") ? config.sub("data") : Config());
  Json model_json = config.sub("model").json();
  DatasetPtr train_data;
  std::optional<PriorStages> stages;
  if (is_prior_config(config)) {
    // Stage 2: the data are the first stage's codes; the model's vocabulary and grids follow them.
    stages = PriorStages::from_config(config);
    auto prior_data = open_prior_data(*stages, spec, r.device);
    for (const auto& [key, value] : prior_data.model_options.items()) model_json[key] = value;
    train_data = prior_data.dataset;
  } else {
    train_data = open_dataset(spec);
  }
  auto model = make_trainable(Config(model_json, config.source() + ":model"));
  if (stages && !std::dynamic_pointer_cast<PriorImpl>(model))
    throw Error(
        fmt::format("[train] {}: stage1 is set, so the model must be a prior (gpt, "
                    "pixelcnn), got {}",
                    r.config, model->kind()));
  const auto options =
      TrainOptions::from_config(config.has("train") ? config.sub("train") : Config());

  // The resolved config: what actually runs, saved beside every checkpoint.
  Json resolved_json = {{"model", model_config_json(*model)},
                        {"data", spec.to_json()},
                        {"train", options.to_json()},
                        {"seed", seed}};
  if (stages) resolved_json.update(stages->to_json());
  Config resolved(resolved_json, run_dir + "/config.json");
  if (root) {
    fs::create_directories(run_dir);
    resolved.save_json(run_dir + "/config.json");
  }
  if (!r.command_line.empty() && root) {
    std::string previous;
    if (fs::exists(run_dir + "/command.txt")) previous = read_file(run_dir + "/command.txt");
    write_file_atomic(run_dir + "/command.txt", previous + r.command_line + "\n");
  }
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  if (root) {
    spdlog::info("{}: {} ({:.2f} M parameters) on {}, {} threads{}", run_dir, model->kind(),
                 params / 1e6, r.device.str(), torch::get_num_threads(),
                 parallel
                     ? fmt::format(" in each of {} processes ({}, global batch {})",
                                   parallel->world_size(), parallel->backend(), options.batch_size)
                     : "");
    spdlog::info("data: {}", train_data->describe());
  }

  Trainer trainer(model, train_data, options, run_dir, resolved, r.device, seed, parallel);
  if (r.resume) trainer.resume(run_dir);
  std::unique_ptr<TrainingPreviews> previews;
  if (auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model);
      autoencoder && options.preview_interval() > 0 && root) {
    previews =
        std::make_unique<TrainingPreviews>(run_dir, autoencoder, *test_or_train(spec, train_data),
                                           options.preview_interval(), r.device);
  }
  trainer.run([&](const Json& record) {
    if (previews)
      previews->maybe_write(record["step"].get<int64_t>(),
                            record["step"].get<int64_t>() == options.steps);
  });
  outcome.steps = trainer.step();
  if (trainer.stopped()) {
    outcome.stopped = true;
    return outcome;
  }
  trainer.apply_ema();
  if (root) {  // rank 0 saves the weights (before the report, which may fail) and writes the report
    require_finite(module_state(*model), run_dir + "/model.safetensors");
    save_module_safetensors(*model, run_dir + "/model.safetensors");
    outcome.files.push_back("model.safetensors");
  }
  const Measured measured = r.report ? measure(model, spec, train_data, stages, r) : Measured();
  if (root && r.report) outcome.metrics = write_report(outcome, model, stages, r, seed, measured);
  return outcome;
}

}  // namespace lf
