// Helpers shared by the trainer tests: a tiny stochastic autoencoder, a small dataset, options.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "data/idx_dataset.h"
#include "models/autoencoder.h"
#include "train/train_options.h"

namespace lf {
namespace test {

// A tiny stochastic autoencoder: the noise in train_step makes resume depend on the RNG state.
class TinyAEImpl : public AutoencoderImpl {
 public:
  TinyAEImpl() {
    enc = register_module(
        "enc", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).stride(2).padding(1)));
    norm = register_module("norm", torch::nn::BatchNorm2d(4));
    dec = register_module("dec",
                          torch::nn::ConvTranspose2d(
                              torch::nn::ConvTranspose2dOptions(4, 1, 4).stride(2).padding(1)));
  }
  std::string kind() const override { return "tiny"; }
  TrainOutput train_step(const torch::Tensor& x) override {
    auto z = torch::relu(norm(enc(x)));
    z = z + 0.1 * torch::randn_like(z);
    auto y = dec(z);
    auto loss = torch::mse_loss(y, x);
    return {loss, y, {{"loss_rec", loss.item<double>()}}};
  }
  TensorMap encode(const torch::Tensor& x) override {
    return {{"latents", torch::relu(norm(enc(x)))}};
  }
  torch::Tensor decode(const TensorMap& code) override { return dec(code.at("latents")); }
  Json options_json() const override { return Json::object(); }

  torch::nn::Conv2d enc{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
  torch::nn::ConvTranspose2d dec{nullptr};
};

inline DatasetPtr blobs(int64_t n) {
  torch::manual_seed(123);
  auto images = (torch::rand({n, 1, 8, 8}) * 255).to(torch::kUInt8);
  return std::make_shared<IdxDataset>(images, torch::zeros({n}, torch::kInt64), "blobs");
}

inline TrainOptions small_options(int workers) {
  TrainOptions o;
  o.steps = 12;
  o.batch_size = 16;
  o.lr = 1e-2;
  o.warmup_steps = 2;
  o.log_every = 2;
  o.checkpoint_every = 5;
  o.ema_decay = 0.9;
  o.num_workers = workers;
  return o;
}

inline std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/trainer_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace test
}  // namespace lf
