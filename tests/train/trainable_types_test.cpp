// Every trainable type together: the image models' table and the priors', built by name; loading
// a prior's run where an image autoencoder belongs is refused by name.
#include "train/trainable_types.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/state_dict.h"
#include "models/model_test_util.h"
#include "train/checkpoint.h"

namespace lf {
namespace {

TEST(TrainableTypes, BuildEveryTypeAndPresetOfBothTables) {
  const auto names = model_names();
  for (const char* name : {"ae:fashion", "vqgan:fashion32", "classifier", "gpt", "gpt:fashion",
                           "pixelcnn", "pixelcnn:fashion"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const Json config = test::config_of_model_name(name);
    const auto model = make_trainable(Config(config));
    ASSERT_TRUE(model);
    EXPECT_EQ(model->kind(), config["type"]);
  }
  try {
    make_trainable(Config(Json{{"type", "gan"}}));
    ADD_FAILURE() << "built a gan";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known: ae, vae, vqvae, vqgan, autoencoder_kl, "
                                         "classifier, gpt, pixelcnn"),
              std::string::npos)
        << e.what();
  }
}

TEST(TrainableTypes, APriorRunLoadsAsATrainableButNotAsAnAutoencoder) {
  const std::string dir = ::testing::TempDir() + "/prior_run_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const auto prior = make_trainable(Config(Json{{"type", "pixelcnn"}}));
  Config(Json{{"model", model_config_json(*prior)}}).save_json(dir + "/config.json");
  save_module_safetensors(*prior, dir + "/model.safetensors");

  EXPECT_EQ(load_trainable(dir, torch::kCPU).model->kind(), "pixelcnn");
  try {
    load_model(dir, torch::kCPU);
    ADD_FAILURE() << "load_model loaded a pixelcnn";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a pixelcnn model; expected an image autoencoder"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lf
