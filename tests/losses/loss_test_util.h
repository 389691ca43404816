// Helpers shared by the loss tests: the fixtures of scripts/make_loss_fixtures.py, the closed-form
// LPIPS weights that script uses (so no VGG16 is stored), and tolerance checks.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "io/safetensors.h"
#include "io/state_dict.h"
#include "losses/lpips.h"

namespace lf {
namespace test {

inline TensorMap load_loss_fixture(const std::string& name) {
  return load_safetensors(std::string(LF_TEST_DATA_DIR) + "/losses/" + name + ".safetensors");
}

// The entries of `map` under `from` (e.g. "disc."), renamed to start with `to` instead.
inline TensorMap rename_prefix(const TensorMap& map, const std::string& from,
                               const std::string& to = "") {
  TensorMap out;
  for (const auto& [key, value] : map)
    if (key.rfind(from, 0) == 0) out[to + key.substr(from.size())] = value;
  return out;
}

// amp * (offset + sin(0.37 * i + phase)) over the flat index i in float64, then float32: the
// formula of make_loss_fixtures.py.
inline torch::Tensor formula(int64_t numel, double phase, double amp, double offset = 0.0) {
  auto v = torch::empty({numel}, torch::kDouble);
  auto* p = v.data_ptr<double>();
  for (int64_t i = 0; i < numel; ++i) p[i] = amp * (offset + std::sin(0.37 * i + phase));
  return v.to(torch::kFloat);
}

// The value of one LPIPS tensor under taming's key (net.slice2.5.weight, lin3.model.1.weight).
inline torch::Tensor lpips_weight(const std::string& key, torch::IntArrayRef shape) {
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (key.rfind("net.", 0) == 0) {
    const size_t a = key.find('.', 4) + 1, b = key.find('.', a);
    const int index = std::stoi(key.substr(a, b - a));
    if (key.substr(b + 1) == "weight")
      return formula(numel, index, std::sqrt(6.0 / (shape[1] * shape[2] * shape[3]))).view(shape);
    return formula(numel, index + 0.5, 0.01).view(shape);
  }
  const int k = key[3] - '0';  // linK.model.1.weight
  return formula(numel, 100 + k, 0.1, 1.5).view(shape);
}

// All LPIPS parameters under taming's keys with the formula weights (no scaling_layer buffers).
inline TensorMap lpips_formula_weights() {
  TensorMap out;
  LPIPS shapes;
  for (const auto& p : shapes->named_parameters())
    out[p.key()] = lpips_weight(p.key(), p.value().sizes());
  return out;
}

// A .safetensors file (in the test temp dir) of the formula weights; written once per process.
inline const std::string& lpips_formula_file() {
  static const std::string path = [] {
    const std::string p = ::testing::TempDir() + "/lpips_formula.safetensors";
    save_safetensors(p, lpips_formula_weights());
    return p;
  }();
  return path;
}

// max |actual - expected| <= tol * max(1, max |expected|): absolute for O(1) values, relative for
// large ones (float32 sums of thousands of terms).
inline void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double tol,
                         const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const auto a = actual.detach().cpu().to(torch::kDouble);
  const auto e = expected.detach().cpu().to(torch::kDouble);
  const double scale = std::max(1.0, e.abs().max().item<double>());
  const double diff = (a - e).abs().max().item<double>();
  EXPECT_LE(diff, tol * scale) << "max abs diff " << diff << " (scale " << scale << ")";
}

inline void expect_close(double actual, const torch::Tensor& expected, double tol,
                         const std::string& what) {
  expect_close(torch::tensor(actual, torch::kDouble), expected.reshape({}), tol, what);
}

// ||actual - expected|| / ||expected|| <= tol: for gradients, where float32 noise and ReLU /
// max-pool ties move single entries but not the whole.
inline void expect_close_l2(const torch::Tensor& actual, const torch::Tensor& expected, double tol,
                            const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const auto a = actual.detach().cpu().to(torch::kDouble);
  const auto e = expected.detach().cpu().to(torch::kDouble);
  const double rel = ((a - e).norm() / e.norm().clamp_min(1e-300)).item<double>();
  EXPECT_LE(rel, tol) << "relative L2 error " << rel;
}

// The fixtures are float64 (make_loss_fixtures.py); parity runs in both precisions. In float64
// our modules match the reference to round-off on any CPU (float64 convolutions do not go through
// oneDNN); float32 differs between ISAs (AVX2 / AVX-512 kernels), so it is held to what float32
// honestly supports: ~1e-3 relative forward, ~2e-2 relative L2 for gradients.
struct Precision {
  torch::Dtype dtype;
  double forward;   // expect_close tolerance
  double gradient;  // expect_close_l2 tolerance
  const char* name;
};

inline std::vector<Precision> parity_precisions() {
  return {{torch::kDouble, 1e-10, 1e-9, "float64"}, {torch::kFloat, 1e-3, 2e-2, "float32"}};
}

// The fixture's floating tensors in `dtype` (integer ones unchanged).
inline TensorMap in_precision(const TensorMap& map, torch::Dtype dtype) {
  TensorMap out;
  for (const auto& [key, value] : map)
    out[key] = value.is_floating_point() ? value.to(dtype) : value;
  return out;
}

}  // namespace test
}  // namespace lf
