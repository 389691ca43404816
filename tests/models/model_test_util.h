// Helpers shared by the model tests: random and smooth image batches, overfitting a fixed batch,
// and checking lf::Error messages.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"
#include "io/config.h"
#include "io/state_dict.h"

namespace lf {
namespace test {

// max |a - b| / max |b|
inline double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

inline torch::Tensor images(int64_t n, int64_t c, int64_t h, int64_t w) {
  return torch::rand({n, c, h, w}) * 2 - 1;  // in [-1, 1] like the data
}

// Smooth images (upsampled 4x4 noise): what a small autoencoder can overfit in a few steps.
inline torch::Tensor smooth_images(int64_t n, int64_t c, int64_t h, int64_t w) {
  namespace F = torch::nn::functional;
  return F::interpolate(torch::rand({n, c, 4, 4}) * 2 - 1, F::InterpolateFuncOptions()
                                                               .size(std::vector<int64_t>{h, w})
                                                               .mode(torch::kBilinear)
                                                               .align_corners(false));
}

// Trains on one fixed batch; returns mean(`key` over the last 3 steps) / mean(over the first 3).
template <typename Model>
double overfit_ratio(Model& model, const torch::Tensor& x, double lr, int steps, const char* key) {
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(lr));
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    adam.zero_grad();
    auto out = model->train_step(x);
    out.loss.backward();
    adam.step();
    if (step < 3) first += out.logs.at(key);
    if (step >= steps - 3) last += out.logs.at(key);
  }
  return last / first;
}

inline void expect_error(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected lf::Error containing \"" << part << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// Saves `model` as .safetensors (the product's weight format), loads it strictly into `fresh`
// (built from the same options) and expects identical eval-mode reconstructions of x.
template <typename Model>
void expect_round_trip_identical(Model& model, Model& fresh, const torch::Tensor& x,
                                 const std::string& name) {
  model->eval();
  const std::string path = ::testing::TempDir() + "/" + name + ".safetensors";
  save_module_safetensors(*model, path);
  load_module_safetensors(*fresh, path, /*strict=*/true);
  fresh->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->reconstruct(x), fresh->reconstruct(x)));
  std::filesystem::remove(path);
}

// The config mapping of a name from model_type_names / model_names: "type" or "type:preset".
inline Json config_of_model_name(const std::string& name) {
  const auto colon = name.find(':');
  Json config{{"type", name.substr(0, colon)}};
  if (colon != std::string::npos) config["preset"] = name.substr(colon + 1);
  return config;
}

}  // namespace test
}  // namespace lf
