// The C++ API end to end on Fashion-MNIST: train a tiny VQ-VAE and a prior over its codes with
// latentforge::train, open both, tokenize, decode and sample (also through the C API), and the
// typed errors of latentforge::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "latentforge/latentforge.h"
#include "latentforge/latentforge.hpp"

namespace {

namespace fs = std::filesystem;

bool fashion_mnist_installed() {
  return fs::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") ||
         fs::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte");
}

std::string config_path(const std::string& name) {
  return std::string(LF_SOURCE_DIR) + "/configs/" + name;
}

const std::vector<std::string> kTiny = {"train.steps=3", "train.batch_size=32",
                                        "train.log_every=1", "data.limit=256"};

template <typename F>
latentforge::ErrorCode error_of(F&& fn) {
  try {
    fn();
  } catch (const latentforge::Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.code();
  }
  ADD_FAILURE() << "no latentforge::Error";
  return latentforge::ErrorCode::internal;
}

TEST(CppApi, TrainTokenizeAndSampleFromAPrior) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string dir = ::testing::TempDir() + "/cpp_api";
  fs::remove_all(dir);

  latentforge::TrainOptions options;
  options.overrides = kTiny;
  options.eval_limit = 64;
  const auto result = latentforge::train(config_path("vqvae_fashion.yaml"), dir + "/vq", options);
  EXPECT_EQ(result.run_dir, dir + "/vq");
  EXPECT_EQ(result.steps, 3);
  EXPECT_NE(result.metrics_json.find("psnr"), std::string::npos) << result.metrics_json;
  EXPECT_TRUE(fs::exists(dir + "/vq/model.safetensors"));
  // The run folder is taken: a second train there is refused; resume continues it.
  EXPECT_EQ(error_of([&] { latentforge::train(config_path("vqvae_fashion.yaml"), dir + "/vq"); }),
            latentforge::ErrorCode::bad_input);
  latentforge::TrainOptions more;
  more.resume = true;
  more.report = false;
  more.overrides = {"train.steps=4"};
  EXPECT_EQ(latentforge::train("", dir + "/vq", more).steps, 4);

  auto model = latentforge::Model::open(dir + "/vq");
  EXPECT_EQ(model.info().kind, "vqvae");
  EXPECT_EQ(model.info().image_channels, 1);
  EXPECT_EQ(model.info().factor, 4);
  EXPECT_EQ(model.info().codebook_size, 256);
  const auto x = torch::rand({3, 1, 28, 28}) * 2 - 1;
  const auto codes = model.encode_indices(x);
  EXPECT_EQ(codes.sizes(), (std::vector<int64_t>{3, 7, 7}));
  EXPECT_EQ(codes.scalar_type(), torch::kInt64);
  const auto from_codes = model.decode_indices(codes);
  EXPECT_TRUE(torch::allclose(from_codes, model.reconstruct(x), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(model.decode(model.encode(x)), from_codes, 1e-5, 1e-5));
  EXPECT_LE(from_codes.abs().max().item<double>(), 1.0);
  EXPECT_EQ(error_of([&] { model.sample(4); }), latentforge::ErrorCode::unsupported);
  EXPECT_EQ(error_of([&] { model.set_memory_limit(1 << 30); }),
            latentforge::ErrorCode::unsupported);
  EXPECT_EQ(error_of([&] { model.encode(torch::zeros({3, 28, 28})); }),
            latentforge::ErrorCode::shape);

  // A class-conditional transformer over those codes.
  latentforge::TrainOptions gpt = options;
  gpt.overrides.insert(gpt.overrides.end(), {"stage1=" + dir + "/vq", "model.n_layer=1",
                                             "model.n_head=2", "model.n_embd=32"});
  gpt.report = false;
  latentforge::train(config_path("gpt_fashion.yaml"), dir + "/gpt", gpt);
  auto prior = latentforge::Prior::open(dir + "/gpt");
  EXPECT_EQ(prior.kind(), "gpt");
  EXPECT_EQ(prior.num_classes(), 10);
  EXPECT_EQ(prior.grid(), (std::vector<int64_t>{7, 7}));
  latentforge::SampleOptions s;
  s.n = 4;
  s.class_label = 3;
  s.seed = 7;
  s.grid_w = 14;
  s.grid_h = 7;
  const auto sampled = prior.sample_indices(s);
  EXPECT_EQ(sampled.sizes(), (std::vector<int64_t>{4, 7, 14}));
  EXPECT_TRUE(sampled.equal(prior.sample_indices(s)));  // the seed decides
  const auto images = prior.sample(s);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{4, 1, 28, 56}));
  EXPECT_TRUE(images.equal(prior.stage1().decode_indices(sampled)));
  s.class_label = 10;
  EXPECT_EQ(error_of([&] { prior.sample(s); }), latentforge::ErrorCode::invalid_argument);
  EXPECT_EQ(error_of([&] { latentforge::Prior::open(dir + "/vq"); }),
            latentforge::ErrorCode::unsupported);

  // The same prior through the C API.
  lf_prior* handle = nullptr;
  ASSERT_EQ(lf_prior_open((dir + "/gpt").c_str(), "cpu", &handle), LF_OK) << lf_last_error();
  lf_sample_options c;
  lf_sample_options_init(&c);
  c.n = 4;
  c.class_label = 3;
  c.seed = 7;
  c.grid_h = 7;
  c.grid_w = 14;
  lf_tensor c_images = LF_TENSOR_INIT, c_codes = LF_TENSOR_INIT;
  ASSERT_EQ(lf_prior_sample(handle, &c, &c_images, &c_codes), LF_OK) << lf_last_error();
  EXPECT_EQ(c_codes.dtype, LF_INT64);
  EXPECT_TRUE(torch::from_blob(c_codes.data, {4, 7, 14}, torch::kInt64).equal(sampled));
  EXPECT_TRUE(torch::from_blob(c_images.data, {4, 1, 28, 56}).equal(images));
  lf_tensor_free(&c_images);
  lf_tensor_free(&c_codes);
  c.top_p = 0;
  EXPECT_EQ(lf_prior_sample(handle, &c, &c_images, nullptr), LF_ERROR_INVALID_ARGUMENT);
  lf_prior_close(handle);
}

}  // namespace
