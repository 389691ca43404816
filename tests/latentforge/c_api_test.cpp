// The C API as a host program uses it: open / close, encode / decode / reconstruct against the
// Python reference outputs, ownership of returned buffers, thread safety, and bad input (NULL
// handles, wrong shapes and dtypes, missing and truncated files) answered with a status and a
// one-line message, outputs left empty.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "latentforge/latentforge.h"
#include "latentforge/latentforge.hpp"

extern "C" int lf_c_header_check(void);

namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/ldm/" + name;
}

// A borrowed view of a CPU tensor as an lf_tensor input.
lf_tensor view(torch::Tensor& t) {
  lf_tensor v = LF_TENSOR_INIT;
  v.dtype = t.scalar_type() == torch::kInt64 ? LF_INT64 : LF_FLOAT32;
  v.ndim = static_cast<int32_t>(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) v.shape[i] = t.size(i);
  v.data = t.data_ptr();
  return v;
}

// A copy of an lf_tensor output as a torch tensor.
torch::Tensor copy(const lf_tensor& t) {
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  return torch::from_blob(t.data, shape, t.dtype == LF_INT64 ? torch::kInt64 : torch::kFloat32)
      .clone();
}

bool empty(const lf_tensor& t) { return t.data == nullptr && t.ndim == 0; }

struct Fixture {
  torch::Tensor input, decoded, indices;
};

Fixture load(const std::string& name) {
  auto file = latentforge::read_safetensors(fixture(name + ".safetensors"));
  Fixture f;
  f.input = file.at("input").contiguous();
  f.decoded = file.at("decoded").clamp(-1, 1);
  if (file.count("indices")) f.indices = file.at("indices").contiguous();
  return f;
}

// Relative L2 distance.
double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST(CApi, HeaderIsCAndVersionMatches) {
  EXPECT_EQ(lf_c_header_check(), 0) << lf_last_error();
  EXPECT_STREQ(lf_version(), LATENTFORGE_VERSION);
  EXPECT_EQ(latentforge::version(), LATENTFORGE_VERSION);
}

TEST(CApi, KLAutoencoderMatchesReferenceAndFreesItsBuffers) {
  lf_model* model = nullptr;
  ASSERT_EQ(lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                   fixture("sd_kl_small.safetensors").c_str(), "cpu", &model),
            LF_OK)
      << lf_last_error();
  ASSERT_NE(model, nullptr);
  lf_model_info info;
  ASSERT_EQ(lf_model_get_info(model, &info), LF_OK);
  EXPECT_STREQ(info.kind, "autoencoder_kl");
  EXPECT_EQ(info.image_channels, 3);
  EXPECT_EQ(info.latent_channels, 4);
  EXPECT_EQ(info.factor, 8);
  EXPECT_EQ(info.codebook_size, 0);

  auto f = load("sd_kl_small");
  lf_tensor images = view(f.input), latents = LF_TENSOR_INIT, decoded = LF_TENSOR_INIT,
            rec = LF_TENSOR_INIT;
  ASSERT_EQ(lf_encode(model, &images, &latents), LF_OK) << lf_last_error();
  EXPECT_EQ(latents.dtype, LF_FLOAT32);
  ASSERT_EQ(latents.ndim, 4);
  EXPECT_EQ(std::vector<int64_t>(latents.shape, latents.shape + 4),
            (std::vector<int64_t>{1, 4, 4, 4}));
  ASSERT_EQ(lf_decode(model, &latents, &decoded), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_reconstruct(model, &images, &rec), LF_OK) << lf_last_error();
  EXPECT_LT(rel(copy(decoded), f.decoded), 1e-4);  // the ldm reference's decode(posterior mode)
  EXPECT_LT(rel(copy(rec), f.decoded), 1e-4);
  EXPECT_EQ(std::string(lf_last_error()), "");
  lf_tensor_free(&latents);
  EXPECT_TRUE(empty(latents));
  lf_tensor_free(&latents);  // twice is harmless
  lf_tensor_free(&decoded);
  lf_tensor_free(&rec);

  // Not a VQ model: no indices, no own prior.
  lf_tensor out = LF_TENSOR_INIT;
  EXPECT_EQ(lf_encode_indices(model, &images, &out), LF_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(lf_last_error()).find("codebook"), std::string::npos) << lf_last_error();
  EXPECT_EQ(lf_sample(model, 2, 0, &out), LF_ERROR_UNSUPPORTED);
  EXPECT_TRUE(empty(out));

  // Exact streaming and blended tiles are options of the same handle: streamed equals untiled;
  // one tile as large as the image too; smaller tiles normalise each tile alone and drift.
  ASSERT_EQ(lf_model_set_streaming(model, 1), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_reconstruct(model, &images, &rec), LF_OK) << lf_last_error();
  EXPECT_LT(rel(copy(rec), f.decoded), 1e-4);
  lf_tensor_free(&rec);
  ASSERT_EQ(lf_model_set_tiling(model, 32, 8), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_reconstruct(model, &images, &rec), LF_OK) << lf_last_error();
  EXPECT_LT(rel(copy(rec), f.decoded), 1e-4);
  lf_tensor_free(&rec);
  ASSERT_EQ(lf_model_set_tiling(model, 16, 8), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_reconstruct(model, &images, &rec), LF_OK) << lf_last_error();
  EXPECT_EQ(copy(rec).sizes(), f.decoded.sizes());
  EXPECT_GT(rel(copy(rec), f.decoded), 1e-3);
  lf_tensor_free(&rec);
  EXPECT_EQ(lf_model_set_tiling(model, 16, 16), LF_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(lf_model_set_tiling(model, 0, -1), LF_OK);
  ASSERT_EQ(lf_model_set_memory_limit(model, 0), LF_OK) << lf_last_error();
  EXPECT_EQ(lf_model_set_memory_limit(model, -5), LF_ERROR_INVALID_ARGUMENT);
  lf_model_close(model);
  lf_model_close(nullptr);
}

TEST(CApi, VQGANIndicesRoundTrip) {
  lf_model* model = nullptr;
  ASSERT_EQ(lf_model_open_original(fixture("taming_vqgan.yaml").c_str(),
                                   fixture("taming_vqgan.safetensors").c_str(), nullptr, &model),
            LF_OK)
      << lf_last_error();
  lf_model_info info;
  ASSERT_EQ(lf_model_get_info(model, &info), LF_OK);
  EXPECT_STREQ(info.kind, "vqgan");
  EXPECT_EQ(info.codebook_size, 64);

  auto f = load("taming_vqgan");
  lf_tensor images = view(f.input), indices = LF_TENSOR_INIT, decoded = LF_TENSOR_INIT;
  ASSERT_EQ(lf_encode_indices(model, &images, &indices), LF_OK) << lf_last_error();
  EXPECT_EQ(indices.dtype, LF_INT64);
  const auto codes = copy(indices);
  EXPECT_EQ(codes.sizes(), f.indices.sizes());
  EXPECT_GE(codes.eq(f.indices).to(torch::kFloat).mean().item<double>(), 0.95);
  lf_tensor reference = view(f.indices);
  ASSERT_EQ(lf_decode_indices(model, &reference, &decoded), LF_OK) << lf_last_error();
  EXPECT_LT(rel(copy(decoded), f.decoded), 1e-4);
  lf_tensor_free(&indices);
  lf_tensor_free(&decoded);

  // Codes outside the codebook, floats given as codes, a wrong rank: a shape error, nothing out.
  auto bad = f.indices.clone();
  bad[0][0][0] = 64;
  lf_tensor bad_view = view(bad);
  EXPECT_EQ(lf_decode_indices(model, &bad_view, &decoded), LF_ERROR_SHAPE);
  EXPECT_NE(std::string(lf_last_error()).find("[0, 64)"), std::string::npos) << lf_last_error();
  EXPECT_TRUE(empty(decoded));
  auto floats = f.indices.to(torch::kFloat32);
  lf_tensor float_view = view(floats);
  EXPECT_EQ(lf_decode_indices(model, &float_view, &decoded), LF_ERROR_SHAPE);
  auto flat = f.indices.reshape({-1}).contiguous();
  lf_tensor flat_view = view(flat);
  EXPECT_EQ(lf_decode_indices(model, &flat_view, &decoded), LF_ERROR_SHAPE);
  lf_model_close(model);
}

TEST(CApi, BadInputGivesStatusAndMessageNeverACrash) {
  lf_model* model = reinterpret_cast<lf_model*>(0x1);
  EXPECT_EQ(lf_model_open("/no/such/run", "cpu", &model), LF_ERROR_NOT_FOUND);
  EXPECT_EQ(model, nullptr);  // outputs are cleared on failure
  EXPECT_NE(std::string(lf_last_error()).find("/no/such/run"), std::string::npos);
  EXPECT_EQ(lf_model_open(nullptr, "cpu", &model), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_model_open(fixture("sd_kl_small.yaml").c_str(), "cpu", nullptr),
            LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                   fixture("sd_kl_small.safetensors").c_str(), "tpu", &model),
            LF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lf_last_error()).find("tpu"), std::string::npos) << lf_last_error();

  // A truncated weights file: rejected with its name.
  const std::string dir = ::testing::TempDir() + "/c_api_bad";
  fs::create_directories(dir);
  {
    std::ifstream in(fixture("sd_kl_small.safetensors"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir + "/cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_EQ(lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                   (dir + "/cut.safetensors").c_str(), "cpu", &model),
            LF_ERROR_BAD_INPUT);
  EXPECT_NE(std::string(lf_last_error()).find("cut.safetensors"), std::string::npos)
      << lf_last_error();
  EXPECT_EQ(model, nullptr);

  // NULL handles and tensors.
  lf_tensor out = LF_TENSOR_INIT;
  auto x = torch::zeros({1, 3, 32, 32});
  lf_tensor in = view(x);
  EXPECT_EQ(lf_encode(nullptr, &in, &out), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lf_last_error()).find("model: NULL"), std::string::npos);
  lf_model_info info;
  EXPECT_EQ(lf_model_get_info(nullptr, &info), LF_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                   fixture("sd_kl_small.safetensors").c_str(), "cpu", &model),
            LF_OK);
  EXPECT_EQ(lf_encode(model, nullptr, &out), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_encode(model, &in, nullptr), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_model_get_info(model, nullptr), LF_ERROR_INVALID_ARGUMENT);

  // Wrong shapes and dtypes: one line naming the expected shape.
  auto gray = torch::zeros({1, 1, 32, 32});
  lf_tensor gray_view = view(gray);
  EXPECT_EQ(lf_encode(model, &gray_view, &out), LF_ERROR_SHAPE);
  EXPECT_NE(std::string(lf_last_error()).find("[N, 3, H, W]"), std::string::npos)
      << lf_last_error();
  EXPECT_EQ(std::string(lf_last_error()).find('\n'), std::string::npos);
  auto ints = torch::zeros({1, 3, 32, 32}, torch::kInt64);
  lf_tensor int_view = view(ints);
  EXPECT_EQ(lf_encode(model, &int_view, &out), LF_ERROR_SHAPE);
  lf_tensor weird = in;
  weird.dtype = static_cast<lf_dtype>(7);
  EXPECT_EQ(lf_encode(model, &weird, &out), LF_ERROR_SHAPE);
  weird = in;
  weird.ndim = 0;
  EXPECT_EQ(lf_encode(model, &weird, &out), LF_ERROR_SHAPE);
  weird = in;
  weird.shape[2] = -32;
  EXPECT_EQ(lf_encode(model, &weird, &out), LF_ERROR_SHAPE);
  weird = in;
  weird.shape[0] = int64_t{1} << 39;  // would claim 2^59 values
  EXPECT_EQ(lf_encode(model, &weird, &out), LF_ERROR_SHAPE);
  weird = in;
  weird.data = nullptr;
  EXPECT_EQ(lf_encode(model, &weird, &out), LF_ERROR_INVALID_ARGUMENT);
  auto wrong_latents = torch::zeros({1, 3, 4, 4});
  lf_tensor latent_view = view(wrong_latents);
  EXPECT_EQ(lf_decode(model, &latent_view, &out), LF_ERROR_SHAPE);
  EXPECT_NE(std::string(lf_last_error()).find("[N, 4, h, w]"), std::string::npos)
      << lf_last_error();
  EXPECT_TRUE(empty(out));

  // Files: a missing one, a tensor name that is not there, an output that cannot be written.
  EXPECT_EQ(lf_read_images("/no/such.png", 3, &out), LF_ERROR_NOT_FOUND);
  EXPECT_EQ(lf_read_tensor(fixture("sd_kl_small.safetensors").c_str(), "latents", &out),
            LF_ERROR_BAD_INPUT);
  EXPECT_NE(std::string(lf_last_error()).find("no tensor 'latents'"), std::string::npos);
  EXPECT_EQ(lf_read_tensor(fixture("sd_kl_small.safetensors").c_str(), nullptr, &out),
            LF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(lf_write_images((dir + "/missing_folder/x.png").c_str(), &in, 8), LF_OK);
  EXPECT_FALSE(fs::exists(dir + "/missing_folder/x.png"));
  EXPECT_EQ(lf_write_images((dir + "/x.png").c_str(), &in, 0), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_set_num_threads(-1), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(empty(out));
  lf_model_close(model);

  lf_prior* prior = reinterpret_cast<lf_prior*>(0x1);
  EXPECT_EQ(lf_prior_open("/no/such/prior", "cpu", &prior), LF_ERROR_NOT_FOUND);
  EXPECT_EQ(prior, nullptr);
  lf_sample_options options;
  lf_sample_options_init(&options);
  EXPECT_EQ(lf_prior_sample(nullptr, &options, &out, nullptr), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_train(nullptr, (dir + "/run").c_str(), nullptr, 0, 0), LF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(lf_train("/no/such.yaml", (dir + "/run").c_str(), nullptr, 0, 0), LF_ERROR_NOT_FOUND);
  EXPECT_EQ(lf_train(nullptr, (dir + "/run").c_str(), nullptr, 1, 0), LF_ERROR_INVALID_ARGUMENT);
}

TEST(CApi, ImagesAndTensorsRoundTripThroughFiles) {
  const std::string dir = ::testing::TempDir() + "/c_api_files";
  fs::create_directories(dir);
  // 8-bit PNG: values on the 1/127.5 grid survive exactly.
  auto x = (torch::randint(0, 256, {2, 3, 8, 8}).to(torch::kFloat32) / 127.5 - 1).contiguous();
  lf_tensor in = view(x), back = LF_TENSOR_INIT;
  ASSERT_EQ(lf_write_images((dir + "/two.safetensors").c_str(), &in, 8), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_read_images((dir + "/two.safetensors").c_str(), 0, &back), LF_OK)
      << lf_last_error();
  EXPECT_TRUE(copy(back).equal(x));
  lf_tensor_free(&back);
  auto one = x.slice(0, 0, 1).contiguous();
  lf_tensor one_view = view(one);
  ASSERT_EQ(lf_write_images((dir + "/one.png").c_str(), &one_view, 1), LF_OK) << lf_last_error();
  ASSERT_EQ(lf_read_images((dir + "/one.png").c_str(), 3, &back), LF_OK) << lf_last_error();
  EXPECT_LT((copy(back) - one).abs().max().item<double>(), 1e-6);
  lf_tensor_free(&back);
  ASSERT_EQ(lf_read_tensor((dir + "/two.safetensors").c_str(), "images", &back), LF_OK)
      << lf_last_error();
  EXPECT_TRUE(copy(back).equal(x));
  lf_tensor_free(&back);
}

TEST(CApi, HandlesWorkFromSeveralThreads) {
  auto f = load("sd_kl_small");
  lf_model* shared = nullptr;
  ASSERT_EQ(lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                   fixture("sd_kl_small.safetensors").c_str(), "cpu", &shared),
            LF_OK);
  lf_tensor images = view(f.input), expected = LF_TENSOR_INIT;
  ASSERT_EQ(lf_reconstruct(shared, &images, &expected), LF_OK);
  const auto want = copy(expected);
  lf_tensor_free(&expected);
  // Four threads on one handle (serialised inside) and each on its own: all equal, all clean.
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      lf_model* model = shared;
      if (i % 2 == 1 && lf_model_open_original(fixture("sd_kl_small.yaml").c_str(),
                                               fixture("sd_kl_small.safetensors").c_str(), "cpu",
                                               &model) != LF_OK)
        return;
      lf_tensor out = LF_TENSOR_INIT;
      for (int k = 0; k < 3; ++k) {
        if (lf_reconstruct(model, &images, &out) != LF_OK) return;
        const bool same = copy(out).equal(want);
        lf_tensor_free(&out);
        if (!same) return;
      }
      // A failure on this thread leaves the other threads' messages alone.
      lf_encode(model, nullptr, &out);
      ok[i] = std::string(lf_last_error()).find("images: NULL") != std::string::npos;
      if (model != shared) lf_model_close(model);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ok[i], 1) << "thread " << i;
  lf_model_close(shared);
}

}  // namespace
