// The image models' registry: every (type, preset) builds, overrides apply, resolved options
// rebuild the same model, and errors list what is known.
#include "models/model_registry.h"

#include <gtest/gtest.h>

#include "models/model_test_util.h"

namespace lf {
namespace {

void expect_error_naming(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected lf::Error";
  } catch (const Error& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ModelRegistry, BuildsEveryTypeAndPreset) {
  const auto names = model_type_names(image_model_types());
  for (const char* name : {"ae", "ae:fashion", "ae:face64", "vae", "vae:face64", "vae:fashion",
                           "vqvae", "vqvae:fashion", "vqvae:fashion_collapse"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const Json config = test::config_of_model_name(name);
    const auto model = build_model(image_model_types(), Config(config));
    ASSERT_TRUE(model);
    EXPECT_EQ(model->kind(), config["type"]);
    EXPECT_FALSE(model->parameters().empty());
  }
  // This layer knows no priors (they are above it: priors/prior_registry.h).
  EXPECT_EQ(std::find(names.begin(), names.end(), "gpt"), names.end());
}

TEST(ModelRegistry, OverridesApplyOnTopOfThePreset) {
  const auto vae =
      make_model(Config::from_yaml_string("type: vae\npreset: fashion\nlatent_dim: 8\n"));
  EXPECT_EQ(vae->options_json().at("latent_dim"), 8);
  EXPECT_EQ(vae->options_json().at("image_size"), 28);  // from the preset
  EXPECT_EQ(vae->encode(torch::zeros({1, 1, 28, 28})).at("mean").size(1), 8);

  auto config = Config::from_yaml_string("type: vqvae\npreset: fashion_collapse\n");
  config.set("quantizer.num_codes=64");
  const auto vq = make_model(config);
  EXPECT_EQ(vq->options_json().at("quantizer").at("num_codes"), 64);
  EXPECT_EQ(vq->options_json().at("quantizer").at("code_dim"), 32);
  EXPECT_EQ(vq->options_json().at("codebook_init_offset"), 3.0);
}

TEST(ModelRegistry, ResolvedOptionsRebuildTheSameModel) {
  for (const char* type : {"ae", "vae", "vqvae"}) {
    SCOPED_TRACE(type);
    const auto model = make_model(Config(Json{{"type", type}, {"preset", "fashion"}}));
    Json resolved = model->options_json();
    resolved["type"] = type;  // what a run's config.json holds
    const auto rebuilt = make_model(Config(resolved));
    EXPECT_EQ(rebuilt->options_json(), model->options_json());
    const auto a = model->named_parameters(), b = rebuilt->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& item : a) EXPECT_EQ(item.value().sizes(), b[item.key()].sizes()) << item.key();
  }
}

TEST(ModelRegistry, ErrorsListWhatIsKnown) {
  expect_error_naming(
      [] {
        make_model(Config(Json{{"preset", "fashion"}}));
      },
      {"[make_model]", "'type'", "ae, vae, vqvae"});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "gan"}}));
      },
      {"unknown model type 'gan'", "ae, vae, vqvae"});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "vae"}, {"preset", "celeba"}}));
      },
      {"unknown preset 'celeba'", "face64, fashion"});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "ae"}, {"latent_dim", 3}}));
      },
      {"unknown option 'latent_dim'", "latent_channels"});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "vqvae"}, {"quantizer", {{"K", 3}}}}));
      },
      {"unknown option 'K'", "num_codes"});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "ae"}, {"hidden", "wide"}}));
      },
      {"key 'hidden'", "\"wide\""});
  expect_error_naming(
      [] {
        make_model(Config(Json{{"type", "vae"}, {"variant", "dense"}}));
      },
      {"variant", "conv, spatial"});
}

}  // namespace
}  // namespace lf
