// Trainer: loss goes down, checkpoints are complete, resume is exact, logs are JSONL.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/idx_dataset.h"
#include "io/safetensors.h"
#include "io/state_dict.h"
#include "models/model_registry.h"
#include "priors/code_dataset.h"
#include "priors/gpt.h"
#include "train/trainer_test_util.h"

namespace lf {
namespace {

using test::blobs;
using test::fresh_dir;
using test::small_options;
using test::TinyAEImpl;

TEST(Trainer, ResumeGivesTheSameWeightsAsAnUninterruptedRun) {
  for (int workers : {0, 2}) {
    const auto data = blobs(100);  // 6 batches per epoch: the run crosses epochs
    const std::string full_dir = fresh_dir("full" + std::to_string(workers));
    torch::manual_seed(1);
    auto full_model = std::make_shared<TinyAEImpl>();
    Trainer full(full_model, data, small_options(workers), full_dir, Config(), torch::kCPU, 7);
    full.run({}, false);
    EXPECT_EQ(full.step(), 12);
    ASSERT_TRUE(std::filesystem::exists(full_dir + "/checkpoints/step_0000005/optimizer.pt"));
    ASSERT_TRUE(std::filesystem::exists(full_dir + "/checkpoints/step_0000010/ema.safetensors"));

    // Copy the step-5 checkpoint into a new run and continue from it with a differently seeded
    // model.
    const std::string resumed_dir = fresh_dir("resumed" + std::to_string(workers));
    std::filesystem::create_directories(resumed_dir + "/checkpoints");
    std::filesystem::copy(full_dir + "/checkpoints/step_0000005",
                          resumed_dir + "/checkpoints/step_0000005");
    std::ofstream(resumed_dir + "/checkpoints/latest") << "step_0000005\n";
    torch::manual_seed(999);
    torch::randn({1000});  // disturb the global RNG: resume must restore it
    auto resumed_model = std::make_shared<TinyAEImpl>();
    Trainer resumed(resumed_model, data, small_options(workers), resumed_dir, Config(), torch::kCPU,
                    7);
    resumed.resume(resumed_dir);
    EXPECT_EQ(resumed.step(), 5);
    resumed.run({}, false);

    const auto a = module_state(*full_model), b = module_state(*resumed_model);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, tensor] : a)
      EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name << " workers " << workers;
    const auto ema_a = load_safetensors(full_dir + "/checkpoints/step_0000012/ema.safetensors");
    const auto ema_b = load_safetensors(resumed_dir + "/checkpoints/step_0000012/ema.safetensors");
    for (const auto& [name, tensor] : ema_a)
      EXPECT_TRUE(torch::equal(tensor, ema_b.at(name))) << name;
  }
}

// A tiny VQGAN whose discriminator starts at step 3: two optimizers alternate from there.
AutoencoderPtr tiny_vqgan() {
  Json dd = {{"ch", 32},
             {"ch_mult", {1, 2}},
             {"num_res_blocks", 1},
             {"attn_resolutions", Json::array()},
             {"resolution", 8},
             {"in_channels", 1},
             {"out_ch", 1},
             {"z_channels", 4},
             {"double_z", false}};
  return make_model(Config(Json{
      {"type", "vqgan"},
      {"ddconfig", dd},
      {"embed_dim", 4},
      {"n_embed", 16},
      {"loss",
       {{"disc_in_channels", 1}, {"disc_ndf", 8}, {"disc_num_layers", 1}, {"disc_start", 3}}}}));
}

TEST(Trainer, DiscriminatorGetsItsOwnOptimizerAndResumesExactly) {
  const auto data = blobs(64);
  auto options = small_options(0);
  options.steps = 8;
  options.checkpoint_every = 4;
  options.ema_decay = 0;
  const std::string full_dir = fresh_dir("gan_full");
  torch::manual_seed(1);
  auto full_model = tiny_vqgan();
  const auto disc_before = module_state(*full_model).at("loss.discriminator.main.0.weight").clone();
  std::vector<Json> records;
  Trainer full(full_model, data, options, full_dir, Config(), torch::kCPU, 7);
  full.run([&](const Json& r) { records.push_back(r); }, false);
  ASSERT_TRUE(std::filesystem::exists(full_dir + "/checkpoints/step_0000004/optimizer_disc.pt"));
  // Before disc_start the discriminator is idle; afterwards it trains and logs its loss.
  EXPECT_FALSE(records.front().contains("loss_d"));  // steps 1-2
  EXPECT_TRUE(records.back().contains("loss_d"));
  EXPECT_GT(records.back()["disc_factor"].get<double>(), 0.0);
  EXPECT_FALSE(
      torch::equal(disc_before, module_state(*full_model).at("loss.discriminator.main.0.weight")));

  const std::string resumed_dir = fresh_dir("gan_resumed");
  std::filesystem::create_directories(resumed_dir + "/checkpoints");
  std::filesystem::copy(full_dir + "/checkpoints/step_0000004",
                        resumed_dir + "/checkpoints/step_0000004");
  std::ofstream(resumed_dir + "/checkpoints/latest") << "step_0000004\n";
  torch::manual_seed(999);
  auto resumed_model = tiny_vqgan();
  Trainer resumed(resumed_model, data, options, resumed_dir, Config(), torch::kCPU, 7);
  resumed.resume(resumed_dir);
  resumed.run({}, false);
  const auto a = module_state(*full_model), b = module_state(*resumed_model);
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;

  // A checkpoint without the discriminator's optimizer state cannot resume a GAN.
  std::filesystem::remove(resumed_dir + "/checkpoints/step_0000004/optimizer_disc.pt");
  Trainer broken(tiny_vqgan(), data, options, resumed_dir, Config(), torch::kCPU, 7);
  try {
    broken.resume(resumed_dir + "/checkpoints/step_0000004");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer_disc.pt"), std::string::npos) << e.what();
  }
}

TEST(Trainer, LossGoesDownAndLogsAreJsonLines) {
  const std::string dir = fresh_dir("logs");
  auto options = small_options(0);
  options.steps = 60;
  options.checkpoint_every = 0;
  options.ema_decay = 0;
  std::vector<double> losses;
  torch::manual_seed(1);
  Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(64), options, dir, Config(), torch::kCPU,
                  0);
  trainer.run([&](const Json& record) { losses.push_back(record.at("loss").get<double>()); },
              false);
  ASSERT_EQ(losses.size(), 30u);
  EXPECT_LT(losses.back(), 0.7 * losses.front());
  std::ifstream in(dir + "/log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const auto record = Json::parse(line);
    for (const char* key : {"step", "lr", "loss", "loss_rec", "grad_norm", "images_per_s", "epoch"})
      EXPECT_TRUE(record.contains(key)) << key << " in " << line;
    ++lines;
  }
  EXPECT_EQ(lines, 30);
  EXPECT_EQ(std::filesystem::exists(dir + "/checkpoints/latest"), true);  // the final checkpoint
}

TEST(Trainer, ResumeFromABrokenCheckpointIsAClearError) {
  const std::string dir = fresh_dir("broken");
  std::filesystem::create_directories(dir + "/checkpoints/step_0000001");
  std::ofstream(dir + "/checkpoints/latest") << "step_0000001\n";
  Trainer trainer(std::make_shared<TinyAEImpl>(), blobs(32), small_options(0), dir, Config(),
                  torch::kCPU, 0);
  try {
    trainer.resume(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no model.safetensors"), std::string::npos) << e.what();
  }
}

TEST(TrainOptions, ScheduleWarmsUpThenDecays) {
  TrainOptions o;
  o.steps = 1000;
  o.lr = 1.0;
  o.warmup_steps = 100;
  o.min_lr_ratio = 0.1;
  EXPECT_NEAR(o.lr_at(0), 0.01, 1e-12);
  EXPECT_NEAR(o.lr_at(99), 1.0, 1e-12);
  EXPECT_NEAR(o.lr_at(100), 1.0, 1e-12);
  EXPECT_NEAR(o.lr_at(550), 0.55, 1e-9);  // half way down the cosine
  EXPECT_NEAR(o.lr_at(1000), 0.1, 1e-12);
  o.schedule = "constant";
  EXPECT_NEAR(o.lr_at(900), 1.0, 1e-12);
}

TEST(TrainOptions, UnknownKeysAndBadValuesAreClearErrors) {
  EXPECT_THROW(TrainOptions::from_config(Config::from_yaml_string("stepz: 10")), Error);
  EXPECT_THROW(TrainOptions::from_config(Config::from_yaml_string("optimizer: sgd")), Error);
  EXPECT_THROW(TrainOptions::from_config(Config::from_yaml_string("steps: 0")), Error);
  EXPECT_THROW(TrainOptions::from_config(Config::from_yaml_string("lr: fast")), Error);
  const auto o = TrainOptions::from_config(Config::from_yaml_string("steps: 10\nlr: 1e-3"));
  EXPECT_EQ(o.steps, 10);
  EXPECT_DOUBLE_EQ(o.lr, 1e-3);
}

}  // namespace
}  // namespace lf

namespace lf {
namespace {

// Priors train through the same loop on code batches (no images), with dropout (the RNG) on, and
// resume exactly.
TEST(Trainer, TrainsAPriorOnCodeBatchesAndResumesExactly) {
  torch::manual_seed(5);
  const auto codes = torch::randint(4, {64, 3, 3});
  codes.select(2, 0).fill_(1);  // a learnable pattern
  const auto data =
      std::make_shared<CodeDataset>(codes, torch::arange(64) % 2, torch::Tensor(), 2, "toy codes");
  auto options = small_options(0);
  const auto make = [] {
    return std::make_shared<GPTImpl>(GPTOptions()
                                         .num_codes(4)
                                         .grid({3, 3})
                                         .num_classes(2)
                                         .n_layer(1)
                                         .n_head(2)
                                         .n_embd(16)
                                         .embd_pdrop(0.1)
                                         .resid_pdrop(0.1));
  };
  const std::string full_dir = fresh_dir("prior_full");
  torch::manual_seed(1);
  auto full_model = make();
  std::vector<Json> records;
  Trainer full(full_model, data, options, full_dir, Config(), torch::kCPU, 3);
  full.run([&](const Json& r) { records.push_back(r); }, false);
  EXPECT_LT(records.back()["loss_nll"].get<double>(), records.front()["loss_nll"].get<double>());

  const std::string resumed_dir = fresh_dir("prior_resumed");
  std::filesystem::create_directories(resumed_dir + "/checkpoints");
  std::filesystem::copy(full_dir + "/checkpoints/step_0000005",
                        resumed_dir + "/checkpoints/step_0000005");
  std::ofstream(resumed_dir + "/checkpoints/latest") << "step_0000005\n";
  torch::randn({1000});
  auto resumed_model = make();
  Trainer resumed(resumed_model, data, options, resumed_dir, Config(), torch::kCPU, 3);
  resumed.resume(resumed_dir);
  resumed.run({}, false);
  const auto a = module_state(*full_model), b = module_state(*resumed_model);
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
}

}  // namespace
}  // namespace lf
