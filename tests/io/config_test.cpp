// YAML configs: types, dotted access, overrides, errors, JSON output.
#include "io/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "io/atomic_file.h"

namespace lf {
namespace {

// Shaped like taming-transformers' configs/faceshq_vqgan.yaml.
constexpr const char* kTamingLike = R"(
model:
  base_learning_rate: 4.5e-6
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 256
    n_embed: 1024
    ddconfig:
      double_z: False
      z_channels: 256
      resolution: 256
      ch_mult: [ 1,1,2,2,4]  # num_down = len(ch_mult)-1
      attn_resolutions: [16]
      dropout: 0.0
    lossconfig:
      params:
        disc_start: 30001
        name: 'vgg'
        nothing: ~
)";

TEST(Config, ReadsTypedValuesFromYaml) {
  const auto config = Config::from_yaml_string(kTamingLike);
  EXPECT_DOUBLE_EQ(config.get<double>("model.base_learning_rate"), 4.5e-6);
  EXPECT_EQ(config.get<int>("model.params.embed_dim"), 256);
  EXPECT_FALSE(config.get<bool>("model.params.ddconfig.double_z"));
  EXPECT_EQ(config.get<std::vector<int>>("model.params.ddconfig.ch_mult"),
            (std::vector<int>{1, 1, 2, 2, 4}));
  EXPECT_EQ(config.get<std::string>("model.target"), "taming.models.vqgan.VQModel");
  EXPECT_EQ(config.get<std::string>("model.params.lossconfig.params.name"), "vgg");
  EXPECT_FALSE(config.has("model.params.lossconfig.params.nothing"));
  EXPECT_EQ(config.get<int>("model.params.missing", 7), 7);
  EXPECT_TRUE(config.at("model.params.ddconfig.dropout").is_number_float());
}

TEST(Config, OverridesKeepTypesAndCreatePaths) {
  auto config = Config::from_yaml_string(kTamingLike);
  config.set("model.params.embed_dim=64");
  config.set("model.base_learning_rate=1e-4");
  config.set("model.params.ddconfig.ch_mult=[1,2]");
  config.set("train.new.flag=true");
  config.set("model.target='123'");
  EXPECT_EQ(config.get<int>("model.params.embed_dim"), 64);
  EXPECT_DOUBLE_EQ(config.get<double>("model.base_learning_rate"), 1e-4);
  EXPECT_EQ(config.get<std::vector<int>>("model.params.ddconfig.ch_mult"),
            (std::vector<int>{1, 2}));
  EXPECT_TRUE(config.get<bool>("train.new.flag"));
  EXPECT_EQ(config.get<std::string>("model.target"), "123");  // quoted stays a string
}

TEST(Config, ErrorsNameTheKeyAndTheExpectation) {
  auto config = Config::from_yaml_string(kTamingLike, "faceshq.yaml");
  try {
    config.get<int>("model.params.n_embedd");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("faceshq.yaml: missing key 'model.params.n_embedd'"),
              std::string::npos)
        << e.what();
  }
  try {
    config.get<int>("model.target");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected an integer, got string"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(config.set("no_equals_sign"), Error);
  EXPECT_THROW(config.set("=3"), Error);
  EXPECT_THROW(config.set("a..b=3"), Error);
  EXPECT_THROW(config.set("model.target.x=3"), Error);  // target is a string, not a mapping
}

TEST(Config, BadFilesAreClearErrors) {
  const std::string dir = ::testing::TempDir();
  EXPECT_THROW(Config::from_yaml_file(dir + "/does_not_exist.yaml"), Error);
  write_file_atomic(dir + "/bad.yaml", "model: [1, 2\n  x: {");
  try {
    Config::from_yaml_file(dir + "/bad.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml: invalid YAML at line"), std::string::npos)
        << e.what();
  }
  write_file_atomic(dir + "/list.yaml", "- 1\n- 2\n");
  EXPECT_THROW(Config::from_yaml_file(dir + "/list.yaml"), Error);
}

// Found by fuzz/fuzz_config: a byte that is not UTF-8 in a YAML string passed the reader, and the
// config then threw nlohmann's type_error (not an lf::Error) when dumped.
TEST(Config, StringsThatAreNotUtf8AreRefusedOnRead) {
  for (const std::string yaml :
       {"model:\n  name: \"ab\xff\"\n", "model:\n  \xfe\xff: 3\n", "list: [1, \"\xc3\"]\n"}) {
    SCOPED_TRACE(yaml);
    try {
      Config::from_yaml_string(yaml, "bad_utf8.yaml");
      ADD_FAILURE() << "read";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("bad_utf8.yaml: invalid YAML at line"), std::string::npos) << message;
      EXPECT_NE(message.find("not valid UTF-8"), std::string::npos) << message;
    }
  }
  EXPECT_THROW(parse_yaml_value("\"\xff\""), Error);
  const Config fine = Config::from_yaml_string("name: \"caf\xc3\xa9\"\n");  // valid UTF-8
  EXPECT_EQ(fine.get<std::string>("name"), "caf\xc3\xa9");
  EXPECT_NO_THROW((void)fine.dump());
}

TEST(Config, SavesResolvedJsonThatReadsBack) {
  auto config = Config::from_yaml_string(kTamingLike);
  config.set("model.params.embed_dim=32");
  const std::string path = ::testing::TempDir() + "/resolved.json";
  config.save_json(path);
  const auto back = Config::from_yaml_file(path);
  EXPECT_EQ(back.json(), config.json());
  EXPECT_EQ(back.get<int>("model.params.embed_dim"), 32);
}

}  // namespace
}  // namespace lf
