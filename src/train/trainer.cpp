// Training loop, checkpoint writing and resume.
#include "train/trainer.h"

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/progress_bar.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/state_dict.h"

namespace fs = std::filesystem;

namespace lf {

Trainer::Trainer(TrainablePtr model, DatasetPtr data, TrainOptions options, std::string run_dir,
                 Config run_config, torch::Device device, uint64_t seed)
    : model_(std::move(model)),
      data_(std::move(data)),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      run_config_(std::move(run_config)),
      device_(device),
      seed_(seed) {
  fs::create_directories(run_dir_ + "/checkpoints");
  model_->to(device_);
  build_optimizer();
  if (options_.ema_decay > 0)
    for (const auto& [name, tensor] : module_state(*model_)) ema_[name] = tensor.clone();
}

Trainer::~Trainer() = default;

namespace {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        std::vector<torch::Tensor> params) {
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params,
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::Adam>(
      params,
      torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
}

// Turns requires_grad off for a set of parameters while alive (the discriminator during the
// generator step, as Lightning's toggle_optimizer does): no gradients are computed or kept for it.
class FrozenParameters {
 public:
  explicit FrozenParameters(const std::vector<torch::Tensor>& params) : params_(params) {
    for (auto& p : params_) p.requires_grad_(false);
  }
  ~FrozenParameters() {
    for (auto& p : params_) p.requires_grad_(true);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
};

}  // namespace

void Trainer::build_optimizer() {
  // The discriminator (if any) gets its own optimizer; the generator's takes everything else.
  disc_params_.clear();
  for (auto& p : model_->discriminator_parameters())
    if (p.requires_grad()) disc_params_.push_back(p);
  const auto is_disc = [this](const torch::Tensor& p) {
    for (const auto& d : disc_params_)
      if (d.is_same(p)) return true;
    return false;
  };
  gen_params_.clear();
  for (auto& p : model_->parameters())
    if (p.requires_grad() && !is_disc(p)) gen_params_.push_back(p);
  optimizer_ = make_optimizer(options_, gen_params_);
  disc_optimizer_.reset();
  if (!disc_params_.empty()) disc_optimizer_ = make_optimizer(options_, disc_params_);
}

void Trainer::set_lr(double lr) {
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
  if (disc_optimizer_)
    for (auto& group : disc_optimizer_->param_groups()) group.options().set_lr(lr);
}

void Trainer::update_ema() {
  if (ema_.empty()) return;
  torch::NoGradGuard no_grad;
  const double d = options_.ema_decay;
  for (const auto& [name, tensor] : module_state(*model_)) {
    auto& avg = ema_.at(name);
    if (tensor.is_floating_point())
      avg.mul_(d).add_(tensor, 1.0 - d);
    else
      avg.copy_(tensor);
  }
}

void Trainer::apply_ema() {
  if (!ema_.empty()) load_module_state(*model_, ema_, /*strict=*/true, "ema");
}

void Trainer::save_checkpoint() {
  const std::string name = checkpoint_name(state_.step);
  const std::string final_dir = run_dir_ + "/checkpoints/" + name;
  const std::string temp_dir = final_dir + ".tmp";
  fs::remove_all(temp_dir);
  fs::create_directories(temp_dir);

  save_module_safetensors(*model_, temp_dir + "/model.safetensors");
  if (!ema_.empty()) {
    TensorMap cpu;
    for (const auto& [k, v] : ema_) cpu[k] = v.to(torch::kCPU).contiguous();
    save_safetensors(temp_dir + "/ema.safetensors", cpu);
  }
  {
    torch::serialize::OutputArchive archive;
    optimizer_->save(archive);
    archive.save_to(temp_dir + "/optimizer.pt");
  }
  if (disc_optimizer_) {
    torch::serialize::OutputArchive archive;
    disc_optimizer_->save(archive);
    archive.save_to(temp_dir + "/optimizer_disc.pt");
  }
  {
    torch::serialize::OutputArchive archive;
    archive.write("step", torch::tensor(state_.step, torch::kInt64));
    archive.write("data_epoch", torch::tensor(state_.data.epoch, torch::kInt64));
    archive.write("data_batch", torch::tensor(state_.data.batch, torch::kInt64));
    archive.write("rng_cpu", torch::globalContext().defaultGenerator(torch::kCPU).get_state());
    archive.save_to(temp_dir + "/state.pt");
  }
  run_config_.save_json(temp_dir + "/config.json");
  fs::remove_all(final_dir);
  fs::rename(temp_dir, final_dir);
  write_file_atomic(run_dir_ + "/checkpoints/latest", name + "\n");
  spdlog::debug("checkpoint {}", final_dir);
}

void Trainer::resume(const std::string& path) {
  std::error_code ec;
  std::string dir = path;
  if (fs::is_regular_file(path + "/checkpoints/latest", ec)) dir = latest_checkpoint(path);
  for (const char* file : {"model.safetensors", "optimizer.pt", "state.pt"})
    if (!fs::is_regular_file(dir + "/" + file, ec))
      fail("resume", "{}: no {} (expected a checkpoint folder or a run folder with checkpoints)",
           dir, file);
  load_module_safetensors(*model_, dir + "/model.safetensors", /*strict=*/true);
  if (!ema_.empty()) {
    if (!fs::is_regular_file(dir + "/ema.safetensors", ec))
      fail("resume", "{}: EMA is on but the checkpoint has no ema.safetensors", dir);
    for (auto& [k, v] : load_safetensors(dir + "/ema.safetensors")) {
      if (!ema_.count(k)) fail("resume", "{}/ema.safetensors: unexpected key '{}'", dir, k);
      ema_[k].copy_(v);
    }
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(dir + "/optimizer.pt");
    optimizer_->load(archive);
    if (disc_optimizer_) {
      if (!fs::is_regular_file(dir + "/optimizer_disc.pt", ec))
        fail("resume",
             "{}: the model has a discriminator but the checkpoint has no "
             "optimizer_disc.pt",
             dir);
      torch::serialize::InputArchive disc_archive;
      disc_archive.load_from(dir + "/optimizer_disc.pt");
      disc_optimizer_->load(disc_archive);
    }
    torch::serialize::InputArchive state;
    state.load_from(dir + "/state.pt");
    torch::Tensor step, epoch, batch, rng;
    state.read("step", step);
    state.read("data_epoch", epoch);
    state.read("data_batch", batch);
    state.read("rng_cpu", rng);
    state_.step = step.item<int64_t>();
    state_.data = {epoch.item<int64_t>(), batch.item<int64_t>()};
    state_.rng_cpu = rng;
  } catch (const c10::Error& e) {
    fail("resume", "{}: unreadable optimizer.pt/state.pt: {}", dir, e.what_without_backtrace());
  }
  spdlog::info("resumed from {} at step {}", dir, state_.step);
}

void Trainer::run(const std::function<void(const Json&)>& on_log, bool progress_bar) {
  DataLoaderOptions loader_options;
  loader_options.batch_size = options_.batch_size;
  loader_options.num_workers = options_.num_workers;
  loader_options.seed = seed_;
  loader_ = std::make_unique<DataLoader>(data_, loader_options, state_.data);
  if (state_.rng_cpu.defined()) {
    at::Generator generator =
        torch::globalContext().defaultGenerator(torch::kCPU);  // shares the global one
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state_.rng_cpu);
  }

  std::FILE* log = std::fopen((run_dir_ + "/log.jsonl").c_str(), state_.step > 0 ? "a" : "w");
  if (!log) fail("train", "{}/log.jsonl: cannot open for writing", run_dir_);

  ProgressBarOptions bar_options;
  bar_options.label = model_->kind();
  bar_options.unit = "step";
  if (!progress_bar) {  // quiet: no redraws, no plain lines
    bar_options.force_tty = 0;
    bar_options.plain_interval_s = 1e9;
  }
  ProgressBar bar(options_.steps, bar_options);
  bar.set_position(state_.step);

  std::map<std::string, double> sums;
  int64_t window = 0, window_images = 0;
  auto window_start = std::chrono::steady_clock::now();
  model_->train();
  while (state_.step < options_.steps) {
    const double lr = options_.lr_at(state_.step);
    set_lr(lr);
    const Batch batch = loader_->next().to(device_);
    model_->set_step(state_.step);
    optimizer_->zero_grad();
    TrainOutput out;
    {
      FrozenParameters frozen(disc_params_);
      out = model_->train_batch(batch);
      if (!torch::isfinite(out.loss).item<bool>())
        fail("train", "step {}: loss is {} (lower train.lr or check the data)", state_.step,
             out.loss.item<double>());
      out.loss.backward();
    }
    double grad_norm = 0;
    if (options_.grad_clip > 0)
      grad_norm = torch::nn::utils::clip_grad_norm_(gen_params_, options_.grad_clip);
    optimizer_->step();
    out.logs["loss"] = out.loss.item<double>();
    if (disc_optimizer_ && model_->discriminator_active(state_.step)) {
      // Second player, on the same batch and the generator step's reconstruction (detached).
      disc_optimizer_->zero_grad();
      TrainOutput d = model_->discriminator_step(batch.images, out.reconstruction.detach());
      if (!torch::isfinite(d.loss).item<bool>())
        fail("train", "step {}: discriminator loss is {} (lower train.lr)", state_.step,
             d.loss.item<double>());
      d.loss.backward();
      disc_optimizer_->step();
      for (const auto& [k, v] : d.logs) out.logs[k] = v;
    }
    update_ema();
    ++state_.step;
    state_.data = loader_->position();

    out.logs["grad_norm"] = grad_norm;
    for (const auto& [k, v] : out.logs) sums[k] += v;
    ++window;
    window_images += batch.size();
    bar.update(1);

    if (state_.step % options_.log_every == 0 || state_.step == options_.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
      Json record = {{"step", state_.step},
                     {"epoch", state_.data.epoch},
                     {"lr", lr},
                     {"images_per_s", seconds > 0 ? window_images / seconds : 0.0}};
      for (const auto& [k, v] : sums) record[k] = v / window;
      std::fprintf(log, "%s\n", record.dump().c_str());
      std::fflush(log);
      if (on_log) on_log(record);
      bar.update(0, fmt::format("loss {:.4f}", record["loss"].get<double>()));
      sums.clear();
      window = window_images = 0;
      window_start = std::chrono::steady_clock::now();
    }
    if (options_.checkpoint_every > 0 && state_.step % options_.checkpoint_every == 0 &&
        state_.step < options_.steps) {
      save_checkpoint();
    }
  }
  bar.finish();
  std::fclose(log);
  save_checkpoint();
  model_->eval();
}

}  // namespace lf
