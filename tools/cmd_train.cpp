// `latentforge train`: train a model from a YAML config into a run folder, resume it exactly, and
// leave metrics, grids and plots behind.
#include <filesystem>
#include <optional>

#include "cli.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/dataset_factory.h"
#include "eval/prior_report.h"
#include "eval/run_report.h"
#include "eval/sample_score.h"
#include "io/atomic_file.h"
#include "io/state_dict.h"
#include "models/model_registry.h"
#include "priors/prior_data.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace lf::cli {

namespace {

struct TrainCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  std::string resume;
  bool force = false;
  bool no_report = false;
  int64_t eval_limit = 0;
};

void run_train(const TrainCommandOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  const torch::Device device = parse_device(globals.device);

  std::string run_dir = o.out;
  Config config;
  if (!o.resume.empty()) {
    run_dir = o.resume;
    config = Config::from_yaml_file(o.resume + "/config.json");
  } else {
    if (o.config.empty())
      throw Error("[train] --config FILE.yaml is required (or --resume RUN_DIR)");
    config = Config::from_yaml_file(o.config);
    if (run_dir.empty()) run_dir = "runs/" + fs::path(o.config).stem().string();
  }
  for (const auto& assignment : o.overrides) config.set(assignment);
  const uint64_t seed = config.get<uint64_t>("seed", globals.seed);
  seed_everything(seed);

  // Held from here on: a second trainer on this folder is refused before it changes anything.
  const auto lock = lock_run_dir(run_dir);
  const bool holds_run =
      fs::exists(run_dir + "/checkpoints/latest") || fs::exists(run_dir + "/log.jsonl");
  if (o.resume.empty() && holds_run && !o.force)
    throw Error(
        fmt::format("[train] {}: holds a run already (use --resume {} to continue, --force to "
                    "start over, or --out)",
                    run_dir, run_dir));
  if (o.resume.empty() && o.force) {
    // Remove only what a run writes: --out may name a folder that holds other things too.
    fs::remove_all(run_dir + "/checkpoints");
    for (const char* file :
         {"log.jsonl", "model.safetensors", "metrics.json", "reconstructions.png",
          "training_curves.png", "codebook_usage.png", "samples.png", "command.txt"})
      fs::remove(run_dir + "/" + file);
  }

  const auto spec = DatasetSpec::from_config(config.has("data") ? config.sub("data") : Config());
  Json model_json = config.sub("model").json();
  DatasetPtr train_data;
  std::optional<PriorStages> stages;
  if (is_prior_config(config)) {
    // Stage 2: the data are the first stage's codes; the model's vocabulary and grids follow them.
    stages = PriorStages::from_config(config);
    auto prior_data = open_prior_data(*stages, spec, device);
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
                    o.config, model->kind()));
  const auto options =
      TrainOptions::from_config(config.has("train") ? config.sub("train") : Config());

  // The resolved config: what actually runs, saved beside every checkpoint.
  Json resolved_json = {{"model", model_config_json(*model)},
                        {"data", spec.to_json()},
                        {"train", options.to_json()},
                        {"seed", seed}};
  if (stages) resolved_json.update(stages->to_json());
  Config resolved(resolved_json, run_dir + "/config.json");
  fs::create_directories(run_dir);
  resolved.save_json(run_dir + "/config.json");
  {
    std::string previous;
    if (fs::exists(run_dir + "/command.txt")) previous = read_file(run_dir + "/command.txt");
    write_file_atomic(run_dir + "/command.txt", previous + globals.command_line + "\n");
  }
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  spdlog::info("{}: {} ({:.2f} M parameters) on {}, {} threads", run_dir, model->kind(),
               params / 1e6, device.str(), torch::get_num_threads());
  spdlog::info("data: {}", train_data->describe());

  Trainer trainer(model, train_data, options, run_dir, resolved, device, seed);
  if (!o.resume.empty()) trainer.resume(run_dir);
  trainer.run();
  trainer.apply_ema();
  require_finite(module_state(*model), run_dir + "/model.safetensors");
  save_module_safetensors(*model, run_dir + "/model.safetensors");

  if (o.no_report) return;
  if (auto prior = std::dynamic_pointer_cast<PriorImpl>(model)) {
    const Json metrics =
        write_prior_report(run_dir, *prior, *stages, spec, device, seed, o.eval_limit);
    std::printf(
        "%s\nrun folder: %s (model.safetensors, metrics.json, samples.png, "
        "training_curves.png)\n",
        metrics.dump(2).c_str(), run_dir.c_str());
    return;
  }
  DatasetSpec test_spec = spec;
  test_spec.split = "test";
  test_spec.limit = 0;
  DatasetPtr test_data;
  try {
    test_data = open_dataset(test_spec);
  } catch (const Error&) {
    test_data = train_data;  // image folders have no test split
  }
  if (auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(model)) {
    const Json report = classifier_report(*classifier, *test_data, device, 256, o.eval_limit);
    plot_training_curves(run_dir + "/log.jsonl", run_dir + "/training_curves.png");
    write_file_atomic(run_dir + "/metrics.json", report.dump(2) + "\n");
    std::printf("%s\nrun folder: %s (model.safetensors, metrics.json, training_curves.png)\n",
                report.dump(2).c_str(), run_dir.c_str());
    return;
  }
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderImpl>(model);
  if (!autoencoder) {
    spdlog::info("{}: no report for a {} model", run_dir, model->kind());
    return;
  }
  const Json metrics = write_run_report(run_dir, *autoencoder, *test_data, device, o.eval_limit);
  std::printf("%s\n", metrics.dump(2).c_str());
  std::printf(
      "run folder: %s (model.safetensors, metrics.json, reconstructions.png, "
      "training_curves.png%s)\n",
      run_dir.c_str(), metrics.contains("codebook") ? ", codebook_usage.png" : "");
}

}  // namespace

void register_train(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<TrainCommandOptions>();
  auto* cmd = app.add_subcommand("train", "train a model from a YAML config (see configs/)");
  cmd->add_option("-c,--config", o->config, "YAML config with model:, data:, train: sections");
  cmd->add_option("--set", o->overrides,
                  "override a config value: --set train.steps=500 (repeatable)");
  cmd->add_option("-o,--out", o->out, "run folder (default runs/<config name>)");
  cmd->add_option("--resume", o->resume,
                  "continue the run in this folder from its latest checkpoint");
  cmd->add_flag("--force", o->force, "start over in a run folder that holds a run");
  cmd->add_flag("--no-report", o->no_report, "skip the evaluation and pictures at the end");
  cmd->add_option("--eval-limit", o->eval_limit, "evaluate on the first N test images (0 = all)")
      ->capture_default_str();
  cmd->callback([o, &globals] { run_train(*o, globals); });
}

}  // namespace lf::cli
