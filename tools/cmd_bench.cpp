// `latentforge bench train`: training throughput of a config's model (images/s), measured the way
// the trainer runs (data loader, forward, backward, gradient clipping as the config asks, Adam
// step; for a VQGAN / KL model past disc_start also the discriminator's own step on the detached
// reconstruction), printed as JSON so that bench/train_vs_pytorch.py can put it beside the
// PyTorch reference.
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "core/process_usage.h"
#include "core/runtime.h"
#include "data/data_loader.h"
#include "data/dataset_factory.h"
#include "io/atomic_file.h"
#include "models/model_registry.h"
#include "op_profile.h"
#include "train/checkpoint.h"
#include "train/parameter_groups.h"
#include "train/train_options.h"

namespace lf::cli {

namespace {
struct BenchTrainOptions {
  std::string config;
  std::vector<std::string> overrides;
  int64_t batch_size = 0;  // 0: the config's
  int64_t steps = 30;
  int64_t warmup = 5;
  int64_t step = 0;  // the training step the model is told (GAN models: past disc_start or not)
  std::string out;
  int profile = 0;  // > 0: after the timed steps, as many steps again under the op profiler
};

void run_bench_train(const BenchTrainOptions& o, const GlobalOptions& globals) {
  apply_globals(globals);
  const auto device = parse_device(globals.device);
  Config config = Config::from_yaml_file(o.config);
  for (const auto& assignment : o.overrides) config.set(assignment);
  const auto spec = DatasetSpec::from_config(config.has("data") ? config.sub("data") : Config());
  auto model = make_model(config.sub("model"));
  model->to(device);
  model->train();
  const int64_t batch_size =
      o.batch_size > 0 ? o.batch_size : config.get<int64_t>("train.batch_size", 128);
  DataLoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.seed = globals.seed;
  DataLoader loader(open_dataset(spec), loader_options);
  // As the trainer: the discriminator (if any) has its own optimizer and no gradients during the
  // generator's backward; the optimizer and gradient clipping are the config's.
  const TrainOptions train =
      TrainOptions::from_config(config.has("train") ? config.sub("train") : Config());
  const ParameterGroups params = parameter_groups(*model);
  const auto optimizer = make_optimizer(train, params.generator);
  const auto disc_optimizer =
      params.discriminator.empty() ? nullptr : make_optimizer(train, params.discriminator);
  const double grad_clip = train.grad_clip;
  model->set_step(o.step);
  const bool adversarial = disc_optimizer && model->discriminator_active(o.step);

  auto step = [&] {
    const auto x = loader.next().images.to(device);
    optimizer->zero_grad();
    TrainOutput out;
    {
      FrozenParameters frozen(params.discriminator);
      out = model->train_step(x);
      out.loss.backward();
    }
    if (grad_clip > 0) torch::nn::utils::clip_grad_norm_(params.generator, grad_clip);
    optimizer->step();
    if (adversarial) {
      disc_optimizer->zero_grad();
      model->discriminator_step(x, out.reconstruction.detach()).loss.backward();
      disc_optimizer->step();
    }
    if (device.is_cuda()) out.loss.item<float>();  // wait for the GPU
  };
  for (int64_t i = 0; i < o.warmup; ++i) step();
  const auto usage_before = process_usage();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.steps; ++i) step();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto usage = per_call(usage_before, process_usage(), static_cast<int>(o.steps));

  Json result = {{"model", model_config_json(*model)},
                 {"batch_size", batch_size},
                 {"step", o.step},
                 {"discriminator", adversarial},
                 {"grad_clip", grad_clip},
                 {"steps", o.steps},
                 {"threads", torch::get_num_threads()},
                 {"device", device.str()},
                 {"seconds", seconds},
                 {"step_ms", 1000.0 * seconds / o.steps},
                 {"images_per_s", batch_size * o.steps / seconds},
                 // What the kernel charged per timed step, and the peak resident set so far.
                 {"minor_faults_per_step", usage.minor_faults},
                 {"system_ms_per_step", 1000.0 * usage.system_s},
                 {"user_ms_per_step", 1000.0 * usage.user_s},
                 {"peak_rss_mb", usage.peak_rss_mb}};
  if (!o.out.empty()) {
    prepare_output(o.out);
    write_file_atomic(o.out, result.dump(2) + "\n");
  }
  std::printf("%s\n", result.dump(2).c_str());
  if (o.profile > 0) {  // after the JSON: the profiler's own cost stays out of the figures above
    std::fprintf(stderr, "op profile, %lld steps:\n", static_cast<long long>(o.steps));
    print_op_profile(
        [&] {
          for (int64_t i = 0; i < o.steps; ++i) step();
        },
        o.steps, o.profile, stderr);
  }
}
}  // namespace

void register_bench(CLI::App& app, const GlobalOptions& globals) {
  auto* cmd =
      app.add_subcommand("bench", "measure speed (bench train: training images/s of a config)");
  cmd->require_subcommand(1);
  auto o = std::make_shared<BenchTrainOptions>();
  auto* train = cmd->add_subcommand("train", "training throughput of a config's model, as JSON");
  train->add_option("-c,--config", o->config, "YAML config (see configs/)")->required();
  train->add_option("--set", o->overrides, "override a config value (repeatable)");
  train->add_option("--batch-size", o->batch_size, "images per step (0 = the config's)")
      ->capture_default_str();
  train->add_option("--steps", o->steps, "timed steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  train->add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
  train
      ->add_option("--step", o->step,
                   "the training step the model is told (a VQGAN / KL model trains its "
                   "discriminator too from disc_start on)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  train->add_option("-o,--out", o->out, "also write the JSON here");
  train
      ->add_option("--profile", o->profile,
                   "then run the steps again under LibTorch's profiler and print the N ops "
                   "with the most self time to stderr (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  train->callback([o, &globals] { run_bench_train(*o, globals); });
}

}  // namespace lf::cli
