// Training previews: see training_previews.h.
#include "runs/training_previews.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image.h"

namespace fs = std::filesystem;

namespace lf {

std::string preview_name(int64_t step) {
  return fmt::format("step_{:07d}.png", step);
}

TrainingPreviews::TrainingPreviews(std::string run_dir, AutoencoderPtr model, const Dataset& test,
                                   int64_t every, torch::Device device, int64_t count)
    : run_dir_(std::move(run_dir)), model_(std::move(model)), every_(every) {
  if (every_ <= 0 || test.size() == 0) {
    every_ = 0;
    return;
  }
  std::vector<int64_t> which;
  for (int64_t i = 0; i < std::min(count, test.size()); ++i) which.push_back(i);
  batch_ = test.get_batch(which).images.to(device);
}

void TrainingPreviews::maybe_write(int64_t step, bool last) {
  if (every_ <= 0 || (step % every_ != 0 && !last)) return;
  const std::string path = run_dir_ + "/previews/" + preview_name(step);
  if (fs::exists(path)) return;
  const bool was_training = model_->is_training();
  model_->eval();
  torch::Tensor reconstruction;
  {
    torch::NoGradGuard no_grad;
    reconstruction = model_->reconstruct(batch_).clamp(-1, 1);
  }
  model_->train(was_training);
  fs::create_directories(run_dir_ + "/previews");
  const torch::Tensor grid =
      make_grid(torch::cat({batch_, reconstruction}).to(torch::kCPU), batch_.size(0));
  write_file_atomic(path, encode_png(grid));
}

}  // namespace lf
