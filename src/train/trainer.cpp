// Training loop, checkpoint writing and resume.
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/progress_bar.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/state_dict.h"
#include "train/parameter_groups.h"
#include "train/stop_request.h"

namespace fs = std::filesystem;

namespace lf {

Trainer::Trainer(TrainablePtr model, DatasetPtr data, TrainOptions options, std::string run_dir,
                 Config run_config, torch::Device device, uint64_t seed, DataParallel* parallel)
    : model_(std::move(model)),
      data_(std::move(data)),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      run_config_(std::move(run_config)),
      device_(device),
      seed_(seed),
      parallel_(parallel && parallel->world_size() > 1 ? parallel : nullptr) {
  if (parallel_ && options_.batch_size % parallel_->world_size() != 0)
    fail("train", "batch_size {}: expected a multiple of the {} processes (it is the global batch)",
         options_.batch_size, parallel_->world_size());
  model_->to(device_);
  build_optimizer();
  if (parallel_) {
    gen_reducer_ = std::make_unique<GradientReducer>(*parallel_, gen_params_);
    if (!disc_params_.empty())
      disc_reducer_ = std::make_unique<GradientReducer>(*parallel_, disc_params_);
    if (!root()) {  // only rank 0 owns the run folder
      if (options_.ema_decay > 0)
        for (const auto& [name, tensor] : module_state(*model_)) ema_[name] = tensor.clone();
      return;
    }
  }
  lock_ = lock_run_dir(run_dir_);
  fs::create_directories(run_dir_ + "/checkpoints");
  // Leftovers of a run killed while writing or pruning a checkpoint: never named by `latest`.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir_ + "/checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 &&
        (name.substr(name.size() - 4) == ".tmp" || name.rfind(".trash-", 0) == 0))
      fs::remove_all(entry.path(), ec);
  }
  if (options_.ema_decay > 0)
    for (const auto& [name, tensor] : module_state(*model_)) ema_[name] = tensor.clone();
}

Trainer::~Trainer() = default;

void Trainer::build_optimizer() {
  // The discriminator (if any) gets its own optimizer; the generator's takes everything else.
  ParameterGroups groups = parameter_groups(*model_);
  gen_params_ = std::move(groups.generator);
  disc_params_ = std::move(groups.discriminator);
  optimizer_ = make_optimizer(options_, gen_params_);
  disc_optimizer_.reset();
  if (!disc_params_.empty()) disc_optimizer_ = make_optimizer(options_, disc_params_);
}

// "nan", "inf" or "-inf" (the sign of a NaN says nothing; std::to_string may print "-nan").
// The archive's bytes. Its own save_to(path) throws from a destructor when a write fails (a full
// disk), which terminates the process; written from memory, a failure is an ordinary error.
static std::string archive_bytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

static std::string nonfinite_text(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

std::string first_nonfinite(const TensorMap& tensors) {
  for (const auto& [name, tensor] : tensors)
    if (tensor.defined() && tensor.is_floating_point() &&
        !torch::isfinite(tensor).all().item<bool>())
      return name;
  return "";
}

void require_finite(const TensorMap& tensors, const std::string& what) {
  const std::string bad = first_nonfinite(tensors);
  if (!bad.empty())
    fail("train", "{}: '{}' holds NaN or Inf; not written (the previous file is untouched)", what,
         bad);
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

void Trainer::broadcast_buffers() {
  if (!parallel_) return;
  std::vector<torch::Tensor> buffers;
  for (auto& b : model_->buffers())
    if (b.defined() && b.numel() > 0 && b.is_floating_point()) buffers.push_back(b);
  if (buffers.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat_parts;
  for (auto& b : buffers) flat_parts.push_back(b.reshape({-1}).to(torch::kFloat64));
  auto flat = torch::cat(flat_parts);
  parallel_->broadcast(flat, 0);
  int64_t at = 0;
  for (auto& b : buffers) {
    b.copy_(flat.narrow(0, at, b.numel()).view_as(b));
    at += b.numel();
  }
}

void Trainer::save_checkpoint() {
  // Data-parallel: every rank's RNG state goes into rank 0's checkpoint (a collective, so every
  // rank comes here), and the ranks must hold the same weights.
  torch::Tensor rng_ranks;
  if (parallel_) {
    // BatchNorm statistics moved with each rank's own batch this step: rank 0's are the run's.
    broadcast_buffers();
    parallel_->check_in_sync(*model_, fmt::format("step {}", state_.step));
    const auto mine = torch::globalContext().defaultGenerator(torch::kCPU).get_state();
    rng_ranks = parallel_->all_gather_rows(mine.unsqueeze(0).to(device_)).to(torch::kCPU);
    if (!root()) return;
  }
  const std::string name = checkpoint_name(state_.step);
  const std::string checkpoints = run_dir_ + "/checkpoints";
  const std::string final_dir = checkpoints + "/" + name;
  const std::string temp_dir = final_dir + ".tmp";
  const std::string previous = latest_checkpoint(run_dir_);
  // The same step again (a run resumed at its end): the folder is complete and `latest` names it;
  // rewriting it would open a window in which `latest` names nothing.
  if (!previous.empty() && fs::path(previous).filename() == name) return;

  const TensorMap state = module_state(*model_);
  require_finite(state, final_dir + "/model.safetensors");
  if (!ema_.empty()) require_finite(ema_, final_dir + "/ema.safetensors");
  try {
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
      write_file_atomic(temp_dir + "/optimizer.pt", archive_bytes(archive));
    }
    if (disc_optimizer_) {
      torch::serialize::OutputArchive archive;
      disc_optimizer_->save(archive);
      write_file_atomic(temp_dir + "/optimizer_disc.pt", archive_bytes(archive));
    }
    {
      torch::serialize::OutputArchive archive;
      archive.write("step", torch::tensor(state_.step, torch::kInt64));
      archive.write("data_epoch", torch::tensor(state_.data.epoch, torch::kInt64));
      archive.write("data_batch", torch::tensor(state_.data.batch, torch::kInt64));
      archive.write("rng_cpu", torch::globalContext().defaultGenerator(torch::kCPU).get_state());
      if (rng_ranks.defined()) archive.write("rng_ranks", rng_ranks);
      archive.write("lr_scale", torch::tensor(lr_scale_, torch::kDouble));
      write_file_atomic(temp_dir + "/state.pt", archive_bytes(archive));
    }
    run_config_.save_json(temp_dir + "/config.json");
    fs::remove_all(final_dir);
    fs::rename(temp_dir, final_dir);
    write_file_atomic(checkpoints + "/latest", name + "\n");
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(temp_dir, ec);
    const std::string reason = dynamic_cast<const c10::Error*>(&e)
                                   ? static_cast<const c10::Error&>(e).what_without_backtrace()
                                   : e.what();
    fail("checkpoint", "cannot write {} ({}); {}", final_dir, reason,
         previous.empty() ? std::string("no earlier checkpoint")
                          : "the previous checkpoint " + previous + " is intact");
  }
  spdlog::debug("checkpoint {}", final_dir);
  prune_checkpoints();
}

void Trainer::prune_checkpoints() {
  if (options_.keep_last <= 0) return;
  const std::string checkpoints = run_dir_ + "/checkpoints";
  const std::string latest = fs::path(latest_checkpoint(run_dir_)).filename().string();
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step_", 0) == 0 && name.find('.') == std::string::npos)
      names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // step_NNNNNNN: oldest first
  const int64_t excess = static_cast<int64_t>(names.size()) - options_.keep_last;
  for (int64_t i = 0; i < excess; ++i) {
    if (names[i] == latest) continue;
    // Renamed away first (atomic), so a kill never leaves a half-deleted step_ folder behind.
    const std::string trash = checkpoints + "/.trash-" + names[i];
    fs::rename(checkpoints + "/" + names[i], trash, ec);
    if (!ec) fs::remove_all(trash, ec);
  }
}

void Trainer::load_checkpoint(const std::string& dir) {
  std::error_code ec;
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
    torch::Tensor step, epoch, batch, rng, lr_scale;
    state.read("step", step);
    state.read("data_epoch", epoch);
    state.read("data_batch", batch);
    state.read("rng_cpu", rng);
    state_.step = step.item<int64_t>();
    state_.data = {epoch.item<int64_t>(), batch.item<int64_t>()};
    state_.rng_cpu = rng;
    // A data-parallel checkpoint holds every rank's generator; with the same number of processes
    // each continues its own. Otherwise ranks other than 0 start new streams (seed, rank, step):
    // the data order stays exact (global batches), the random draws of those ranks do not.
    torch::Tensor rng_ranks;
    const int rank = parallel_ ? parallel_->rank() : 0;
    const int world = parallel_ ? parallel_->world_size() : 1;
    if (state.try_read("rng_ranks", rng_ranks) && rng_ranks.size(0) == world) {
      state_.rng_cpu = rng_ranks[rank].clone();
    } else if (rank > 0) {
      state_.rng_cpu = at::detail::createCPUGenerator(seed_ + 1000003ull * rank +
                                                      static_cast<uint64_t>(state_.step))
                           .get_state();
      spdlog::warn(
          "rank {}: the checkpoint holds no random state for {} processes: rank {} starts "
          "a new random stream",
          rank, world, rank);
    }
    lr_scale_ = state.try_read("lr_scale", lr_scale) ? lr_scale.item<double>() : 1.0;
  } catch (const c10::Error& e) {
    fail("resume", "{}: unreadable optimizer.pt/state.pt: {}", dir, e.what_without_backtrace());
  }
}

void Trainer::resume(const std::string& path) {
  std::error_code ec;
  std::string dir = path;
  if (fs::is_regular_file(path + "/config.json", ec) && !fs::exists(path + "/model.safetensors")) {
    dir = latest_checkpoint(path);  // a run folder
    if (dir.empty()) {
      spdlog::warn("{}: no checkpoint yet (stopped before the first one): starting from step 0",
                   path);
      return;
    }
  } else if (fs::is_regular_file(path + "/checkpoints/latest", ec)) {
    dir = latest_checkpoint(path);
  }
  load_checkpoint(dir);
  spdlog::info("resumed from {} at step {}", dir, state_.step);
}

void Trainer::start_data() {
  DataLoaderOptions loader_options;
  loader_options.batch_size = options_.batch_size;
  loader_options.num_workers = options_.num_workers;
  loader_options.seed = seed_;
  if (parallel_) {
    loader_options.shard_index = parallel_->rank();
    loader_options.shard_count = parallel_->world_size();
  }
  loader_.reset();  // its workers stop before the new ones start
  loader_ = std::make_unique<DataLoader>(data_, loader_options, state_.data);
  if (state_.rng_cpu.defined()) {
    at::Generator generator =
        torch::globalContext().defaultGenerator(torch::kCPU);  // shares the global one
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state_.rng_cpu);
  }
}

void Trainer::handle_nonfinite(const std::string& what) {
  if (options_.on_nonfinite == "stop" || rollbacks_ >= options_.max_rollbacks)
    fail("train",
         "step {}: {} for {} steps in a row{}; stopped (lower train.lr or check the data; the "
         "latest checkpoint is intact)",
         state_.step, what, nonfinite_in_row_,
         rollbacks_ > 0 ? fmt::format(" after {} rollbacks", rollbacks_) : "");
  const std::string dir = latest_checkpoint(run_dir_);
  if (dir.empty())
    fail("train",
         "step {}: {} for {} steps in a row and no checkpoint to roll back to (lower train.lr or "
         "check the data)",
         state_.step, what, nonfinite_in_row_);
  const int64_t from = state_.step;
  const double scale = lr_scale_ * options_.rollback_lr_factor;
  load_checkpoint(dir);
  lr_scale_ = scale;
  ++rollbacks_;
  nonfinite_in_row_ = 0;
  start_data();
  if (log_) log_->reopen(state_.step);
  if (log_)
    log_->write({{"event", "rollback"},
                 {"from_step", from},
                 {"to_step", state_.step},
                 {"reason", what},
                 {"lr_scale", lr_scale_}});
  spdlog::warn("step {}: {}: rolled back to {} with the learning rate times {}", from, what, dir,
               lr_scale_);
}

void Trainer::run(const std::function<void(const Json&)>& on_log, bool progress_bar) {
  start_data();
  if (root()) log_ = std::make_unique<RunLog>(run_dir_ + "/log.jsonl", state_.step);
  if (parallel_) {
    // Every rank starts from rank 0's weights (and EMA), whatever it initialised or loaded.
    parallel_->broadcast_module(*model_);
    for (auto& [name, tensor] : ema_) {
      auto data = tensor.contiguous();
      parallel_->broadcast(data, 0);
      tensor.copy_(data);
    }
  }

  ProgressBarOptions bar_options;
  bar_options.label = model_->kind();
  bar_options.unit = "step";
  if (!root()) bar_options.stream = nullptr;  // rank 0 draws the bar
  if (!progress_bar) {                        // quiet: no redraws, no plain lines
    bar_options.force_tty = 0;
    bar_options.plain_interval_s = 1e9;
  }
  ProgressBar bar(options_.steps, bar_options);
  bar.set_position(state_.step);

  std::map<std::string, double> sums;
  int64_t window = 0, window_images = 0, window_skipped = 0;
  auto window_start = std::chrono::steady_clock::now();
  const double no_clip = std::numeric_limits<double>::infinity();
  model_->train();
  while (state_.step < options_.steps) {
    const double lr = options_.lr_at(state_.step) * lr_scale_;
    set_lr(lr);
    const Batch batch = loader_->next().to(device_);
    model_->set_step(state_.step);
    optimizer_->zero_grad();
    broadcast_buffers();
    TrainOutput out;
    std::string bad;         // what was non-finite this step
    bool stop_seen = false;  // data-parallel: a stop was asked on some rank
    {
      FrozenParameters frozen(disc_params_);
      out = model_->train_batch(batch);
      const bool finite = torch::isfinite(out.loss).item<bool>();
      bool bad_somewhere = !finite;
      if (parallel_) {
        // One collective per step for both decisions the ranks must take together.
        const auto flags =
            parallel_->sum({finite ? 0.0 : 1.0, training_stop_requested() ? 1.0 : 0.0});
        bad_somewhere = flags[0] > 0;
        stop_seen = flags[1] > 0;
      }
      if (!bad_somewhere) {
        if (gen_reducer_) gen_reducer_->prepare();
        out.loss.backward();
        if (gen_reducer_) gen_reducer_->finish();  // every rank's gradients, averaged
      } else {
        bad = finite ? std::string("loss is not finite on another rank")
                     : "loss is " + nonfinite_text(out.loss.item<double>());
      }
    }
    double grad_norm = 0;
    if (bad.empty()) {
      // Always measured (clipping at infinity is a no-op): a NaN gradient must not be stepped on.
      grad_norm = torch::nn::utils::clip_grad_norm_(
          gen_params_, options_.grad_clip > 0 ? options_.grad_clip : no_clip);
      if (!std::isfinite(grad_norm)) bad = "gradient norm is " + nonfinite_text(grad_norm);
    }
    if (bad.empty()) {
      optimizer_->step();
      out.logs["loss"] = out.loss.item<double>();
      if (disc_optimizer_ && model_->discriminator_active(state_.step)) {
        // Second player, on the same batch and the generator step's reconstruction (detached).
        disc_optimizer_->zero_grad();
        TrainOutput d = model_->discriminator_step(batch.images, out.reconstruction.detach());
        const bool d_finite = torch::isfinite(d.loss).item<bool>();
        if (!any_rank(!d_finite)) {
          if (disc_reducer_) disc_reducer_->prepare();
          d.loss.backward();
          if (disc_reducer_) disc_reducer_->finish();
          const double d_norm = torch::nn::utils::clip_grad_norm_(disc_params_, no_clip);
          if (std::isfinite(d_norm))
            disc_optimizer_->step();
          else
            bad = "discriminator gradient norm is " + nonfinite_text(d_norm);
        } else {
          bad = d_finite ? std::string("discriminator loss is not finite on another rank")
                         : "discriminator loss is " + nonfinite_text(d.loss.item<double>());
        }
        for (const auto& [k, v] : d.logs) out.logs[k] = v;
      }
    }
    if (bad.empty()) {
      update_ema();
      nonfinite_in_row_ = 0;
      out.logs["grad_norm"] = grad_norm;
      for (const auto& [k, v] : out.logs) sums[k] += v;
      ++window;
    } else {
      optimizer_->zero_grad();
      if (disc_optimizer_) disc_optimizer_->zero_grad();
      ++nonfinite_in_row_;
      ++skipped_steps_;
      ++window_skipped;
      spdlog::warn("step {}: {}: step skipped ({} in a row)", state_.step, bad, nonfinite_in_row_);
      // A forward pass on bad data can also poison buffers (BatchNorm statistics): act at once.
      std::string poisoned = first_nonfinite(module_state(*model_));
      if (!poisoned.empty()) bad += ", and '" + poisoned + "' holds NaN or Inf";
      if (any_rank(!poisoned.empty()) && poisoned.empty()) poisoned = "a buffer of another rank";
      if (!poisoned.empty() || nonfinite_in_row_ >= options_.nonfinite_patience) {
        handle_nonfinite(bad);
        sums.clear();
        window = window_images = window_skipped = 0;
        window_start = std::chrono::steady_clock::now();
        bar.set_position(state_.step);
        continue;
      }
    }
    ++state_.step;
    state_.data = loader_->position();
    window_images += batch.size();
    bar.update(1);

    if (state_.step % options_.log_every == 0 || state_.step == options_.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
      if (parallel_) {
        // The log holds averages over every rank (the images of all of them); rank 0 writes it.
        std::vector<double> values;
        for (const auto& [k, v] : sums) values.push_back(v);
        values.push_back(static_cast<double>(window_images));
        values = parallel_->sum(values);
        size_t i = 0;
        for (auto& [k, v] : sums) v = values[i++] / parallel_->world_size();
        window_images = static_cast<int64_t>(values[i]);
      }
      Json record = {{"step", state_.step},
                     {"epoch", state_.data.epoch},
                     {"lr", lr},
                     {"images_per_s", seconds > 0 ? window_images / seconds : 0.0}};
      if (parallel_) {
        record["processes"] = parallel_->world_size();
        record["comm_wait_s"] = parallel_->wait_seconds();
        record["reduced_mb"] = parallel_->reduced_bytes() / 1e6;
      }
      for (const auto& [k, v] : sums) record[k] = v / window;
      if (window_skipped > 0) record["skipped_steps"] = window_skipped;
      if (log_) log_->write(record);
      if (on_log && root()) on_log(record);
      if (record.contains("loss"))
        bar.update(0, fmt::format("loss {:.4f}", record["loss"].get<double>()));
      sums.clear();
      window = window_images = window_skipped = 0;
      window_start = std::chrono::steady_clock::now();
    }
    if (options_.checkpoint_every > 0 && state_.step % options_.checkpoint_every == 0 &&
        state_.step < options_.steps) {
      save_checkpoint();
    }
    // Under torchrun every worker gets the signal, under --nproc the launcher forwards it; either
    // way the ranks stop together, at the same step (data-parallel: as seen before backward).
    const bool stop = parallel_ ? stop_seen : training_stop_requested();
    if (stop && state_.step < options_.steps) {
      stopped_ = true;
      spdlog::info("stop requested: checkpoint at step {} of {}", state_.step, options_.steps);
      break;
    }
  }
  bar.finish();
  log_.reset();
  save_checkpoint();
  model_->eval();
}

}  // namespace lf
