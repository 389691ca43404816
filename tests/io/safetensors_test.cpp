// safetensors: round trips of every dtype, parity with files laid out like Python's library
// (scripts/make_safetensors_fixtures.py), and a clear lf::Error for every kind of broken file.
#include "io/safetensors.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace lf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string st_fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/safetensors/" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file from header text and a zero-filled data buffer.
std::string st_bytes(const std::string& header, uint64_t buffer_size = 0) {
  return u64le(header.size()) + header + std::string(buffer_size, '\0');
}

// Same dtype, shape and bits (NaN-safe, -0.0-exact).
void expect_same(const torch::Tensor& expected, const torch::Tensor& actual,
                 const std::string& key) {
  SCOPED_TRACE(key);
  ASSERT_TRUE(actual.defined());
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(actual.device().is_cpu());
  const auto a = expected.cpu().contiguous(), b = actual.contiguous();
  if (a.nbytes() > 0) {
    EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0);
  }
}

// Checks that loading `path` throws an lf::Error naming the file and containing `expected`.
void expect_load_error(const std::string& path, const std::string& expected) {
  try {
    SafetensorsReader reader(path);
    ADD_FAILURE() << path << " loaded; expected an error containing: " << expected;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[safetensors::load] " + path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "expected '" << expected << "' in: " << message;
  }
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        fmt::format("lf_st_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized tests: "Suite/Test/0"
    dir_ = fs::path(::testing::TempDir()) / name;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

class SafetensorsFixture : public SafetensorsTest {};
class SafetensorsHostile : public SafetensorsTest {};

// --- round trips -------------------------------------------------------------------------------

torch::Tensor sample(torch::ScalarType dtype, torch::IntArrayRef shape) {
  if (dtype == torch::kBool) return torch::randint(0, 2, shape).to(torch::kBool);
  if (torch::isFloatingType(dtype)) {
    auto t = torch::randn(shape).to(dtype);
    auto flat = t.view(-1);
    if (flat.numel() >= 4) {  // specials survive bit for bit
      flat[0] = std::numeric_limits<double>::infinity();
      flat[1] = -std::numeric_limits<double>::infinity();
      flat[2] = std::numeric_limits<double>::quiet_NaN();
      flat[3] = -0.0;
    }
    return t;
  }
  auto t = torch::randint(-100, 100, shape).to(dtype);
  if (dtype == torch::kByte) t = torch::randint(0, 256, shape).to(dtype);
  auto flat = t.view(-1);
  if (flat.numel() >= 2) {
    AT_DISPATCH_INTEGRAL_TYPES(dtype, "sample", [&] {
      flat[0] = std::numeric_limits<scalar_t>::min();
      flat[1] = std::numeric_limits<scalar_t>::max();
    });
  }
  return t;
}

const std::vector<torch::ScalarType> kAllDtypes = {
    torch::kDouble, torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kLong,
    torch::kInt,    torch::kShort, torch::kChar, torch::kByte,     torch::kBool};

TEST_F(SafetensorsTest, RoundTripEveryDtype) {
  std::map<std::string, torch::Tensor> tensors;
  for (auto dtype : kAllDtypes) tensors[c10::toString(dtype)] = sample(dtype, {3, 5});
  save_safetensors(path("all.safetensors"), tensors);

  const auto loaded = load_safetensors(path("all.safetensors"));
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [key, tensor] : tensors) expect_same(tensor, loaded.at(key), key);

  const SafetensorsReader reader(path("all.safetensors"));
  EXPECT_EQ(reader.info("Half").dtype, "F16");
  EXPECT_EQ(reader.info("BFloat16").dtype, "BF16");
  EXPECT_EQ(reader.info("Bool").dtype, "BOOL");
  EXPECT_EQ(reader.info("Char").dtype, "I8");
  EXPECT_EQ(reader.info("Byte").dtype, "U8");
  EXPECT_TRUE(reader.metadata().empty());
}

TEST_F(SafetensorsTest, ScalarAndEmptyTensors) {
  std::map<std::string, torch::Tensor> tensors = {
      {"scalar_f32", torch::tensor(3.5f)},   {"scalar_i64", torch::tensor(int64_t{-7})},
      {"scalar_bool", torch::tensor(true)},  {"empty_1d", torch::empty({0}, torch::kHalf)},
      {"empty_3d", torch::empty({2, 0, 3})}, {"empty_u8", torch::empty({0, 4}, torch::kByte)},
  };
  save_safetensors(path("edge.safetensors"), tensors);
  const SafetensorsReader reader(path("edge.safetensors"));
  for (const auto& [key, tensor] : tensors) expect_same(tensor, reader.get(key), key);
  EXPECT_TRUE(reader.info("scalar_f32").shape.empty());
  EXPECT_EQ(reader.get("scalar_f32").dim(), 0);
  EXPECT_EQ(reader.info("empty_3d").shape, (std::vector<int64_t>{2, 0, 3}));
  EXPECT_EQ(reader.info("empty_3d").begin, reader.info("empty_3d").end);
}

TEST_F(SafetensorsTest, OnlyEmptyTensorsAndNoTensors) {
  save_safetensors(path("empties.safetensors"),
                   {{"a", torch::empty({0})}, {"b", torch::empty({0, 2})}});
  EXPECT_EQ(load_safetensors(path("empties.safetensors")).size(), 2u);
  save_safetensors(path("none.safetensors"), {});
  EXPECT_TRUE(load_safetensors(path("none.safetensors")).empty());
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"empty", ""},
      {"unicode",
       "\xc3\xbc"
       "ml\xc3\xa4ut \xe2\x9c\x93"},
      {"escapes", "a\"b\\c\nd\te\x01"},
      {"config", R"({"z_channels": 4, "ch_mult": [1, 2, 4]})"},
  };
  save_safetensors(path("meta.safetensors"), {{"w", torch::ones({2})}}, metadata);
  std::map<std::string, std::string> loaded_metadata;
  const auto tensors = load_safetensors(path("meta.safetensors"), &loaded_metadata);
  EXPECT_EQ(loaded_metadata, metadata);
  EXPECT_EQ(SafetensorsReader(path("meta.safetensors")).metadata(), metadata);
  expect_same(torch::ones({2}), tensors.at("w"), "w");
}

TEST_F(SafetensorsTest, KeysFollowReferenceOrder) {
  // Python's safetensors: dtype (its enum order ~ alignment) descending, then name.
  std::map<std::string, torch::Tensor> tensors = {
      {"a_bool", sample(torch::kBool, {3})}, {"b_f32", sample(torch::kFloat, {2})},
      {"c_i64", sample(torch::kLong, {1})},  {"d_f64", sample(torch::kDouble, {1})},
      {"e_f16", sample(torch::kHalf, {3})},  {"f_bf16", sample(torch::kBFloat16, {1})},
      {"g_u8", sample(torch::kByte, {5})},   {"h_i8", sample(torch::kChar, {3})},
      {"i_i16", sample(torch::kShort, {1})}, {"j_i32", sample(torch::kInt, {1})},
      {"z_f32", sample(torch::kFloat, {1})}, {"y_empty_f32", torch::empty({0})},
  };
  save_safetensors(path("order.safetensors"), tensors);
  const SafetensorsReader reader(path("order.safetensors"));
  const std::vector<std::string> expected = {"c_i64", "d_f64", "b_f32",  "y_empty_f32",
                                             "z_f32", "j_i32", "f_bf16", "e_f16",
                                             "i_i16", "h_i8",  "g_u8",   "a_bool"};
  EXPECT_EQ(reader.keys(), expected);
  uint64_t offset = 0;
  for (const auto& key : reader.keys()) {
    EXPECT_EQ(reader.info(key).begin, offset) << key;
    offset = reader.info(key).end;
  }
}

TEST_F(SafetensorsTest, SavesViewsAndGradTensorsAsValues) {
  const auto base = torch::arange(12, torch::kFloat).reshape({3, 4});
  const auto transposed = base.t();                               // not contiguous
  const auto sliced = base.index({torch::indexing::Slice(), 1});  // strided
  const auto grad = torch::ones({2, 2}, torch::requires_grad());
  save_safetensors(path("views.safetensors"), {{"t", transposed}, {"s", sliced}, {"g", grad}});
  const auto loaded = load_safetensors(path("views.safetensors"));
  expect_same(transposed.contiguous(), loaded.at("t"), "t");
  expect_same(sliced.contiguous(), loaded.at("s"), "s");
  expect_same(grad.detach(), loaded.at("g"), "g");
  EXPECT_FALSE(loaded.at("g").requires_grad());
}

TEST_F(SafetensorsTest, ReaderLookups) {
  save_safetensors(path("r.safetensors"), {{"w", torch::ones({2, 3})}});
  std::unique_ptr<SafetensorsReader> reader =
      std::make_unique<SafetensorsReader>(path("r.safetensors"));
  EXPECT_EQ(reader->path(), path("r.safetensors"));
  EXPECT_TRUE(reader->contains("w"));
  EXPECT_FALSE(reader->contains("missing.weight"));
  EXPECT_EQ(reader->info("w").shape, (std::vector<int64_t>{2, 3}));
  for (auto lookup : {0, 1}) {
    try {
      if (lookup == 0) reader->info("missing.weight");
      if (lookup == 1) reader->get("missing.weight");
      ADD_FAILURE() << "lookup of a missing key did not throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("missing.weight"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path("r.safetensors")), std::string::npos) << e.what();
    }
  }
  const SafetensorsReader copy = *reader;  // copies share the mapping
  reader.reset();
  expect_same(torch::ones({2, 3}), copy.get("w"), "w");
  // The returned tensor owns its data: it outlives the reader and the file.
  torch::Tensor owned;
  {
    const SafetensorsReader scoped(path("r.safetensors"));
    owned = scoped.get("w");
  }
  fs::remove(path("r.safetensors"));
  expect_same(torch::ones({2, 3}), owned, "owned");
}

TEST_F(SafetensorsTest, EmptyFilesMatchReferenceBytes) {
  // From the reference implementation's tests: "{}" padded; metadata only.
  save_safetensors(path("e.safetensors"), {});
  EXPECT_EQ(read_file(path("e.safetensors")), u64le(8) + "{}      ");
  save_safetensors(path("m.safetensors"), {}, {{"framework", "pt"}});
  EXPECT_EQ(read_file(path("m.safetensors")),
            u64le(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

TEST_F(SafetensorsTest, CudaTensorsAreSavedFromTheHost) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto t = torch::randn({4, 4}, torch::kCUDA).to(torch::kHalf);
  save_safetensors(path("cuda.safetensors"), {{"t", t}});
  expect_same(t.cpu(), load_safetensors(path("cuda.safetensors")).at("t"), "t");
}

// --- failed saves ------------------------------------------------------------------------------

TEST_F(SafetensorsTest, FailedSaveLeavesNoFile) {
  const std::string target = path("bad.safetensors");
  try {
    save_safetensors(target,
                     {{"ok", torch::ones({2})}, {"z", torch::ones({2}, torch::kComplexFloat)}});
    ADD_FAILURE() << "complex tensor saved";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[safetensors::save] " + target, 0), 0u) << message;
    EXPECT_NE(message.find("'z'"), std::string::npos) << message;
    EXPECT_NE(message.find("ComplexFloat"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(fs::is_empty(dir_)) << "a temp file was left behind";

  // A failed save over an existing file keeps the old file whole.
  save_safetensors(target, {{"old", torch::ones({3})}});
  const std::string before = read_file(target);
  EXPECT_THROW(save_safetensors(target, {{"__metadata__", torch::ones({1})}}), Error);
  EXPECT_THROW(save_safetensors(target, {{"undefined", torch::Tensor()}}), Error);
  EXPECT_THROW(save_safetensors(target, {{"bad\xff", torch::ones({1})}}), Error);  // not UTF-8
  EXPECT_THROW(save_safetensors(target, {}, {{"bad", "\xc3"}}), Error);
  EXPECT_EQ(read_file(target), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  EXPECT_THROW(save_safetensors(path("no/such/dir/x.safetensors"), {{"a", torch::ones({1})}}),
               Error);
}

// --- fixtures written by scripts/make_safetensors_fixtures.py -----------------------------------

json read_json(const std::string& path) {
  return json::parse(read_file(path));
}

// The tensor a fixture's .json describes, built without our reader.
torch::Tensor tensor_from_json(const json& entry) {
  static const std::map<std::string, torch::ScalarType> dtypes = {
      {"F64", torch::kDouble},    {"F32", torch::kFloat}, {"F16", torch::kHalf},
      {"BF16", torch::kBFloat16}, {"I64", torch::kLong},  {"I32", torch::kInt},
      {"I16", torch::kShort},     {"I8", torch::kChar},   {"U8", torch::kByte},
      {"BOOL", torch::kBool}};
  const auto dtype = dtypes.at(entry.at("dtype").get<std::string>());
  const auto shape = entry.at("shape").get<std::vector<int64_t>>();
  torch::Tensor values;
  if (torch::isFloatingType(dtype)) {
    auto v = entry.at("values").get<std::vector<double>>();
    values = torch::tensor(v, torch::kDouble);
  } else {
    auto v = entry.at("values").get<std::vector<int64_t>>();
    values = torch::tensor(v, torch::kLong);
  }
  return values.reshape(shape).to(dtype);
}

class SafetensorsFixtureFiles : public SafetensorsFixture,
                                public ::testing::WithParamInterface<std::string> {};

TEST_P(SafetensorsFixtureFiles, LoadsValuesWrittenByPythonLayout) {
  const std::string name = GetParam();
  const json expected = read_json(st_fixture(name + ".json"));
  const SafetensorsReader reader(st_fixture(name + ".safetensors"));
  EXPECT_EQ(reader.keys(), expected.at("keys").get<std::vector<std::string>>());
  EXPECT_EQ(reader.metadata(), (expected.at("metadata").get<std::map<std::string, std::string>>()));
  for (const auto& [key, entry] : expected.at("tensors").items()) {
    SCOPED_TRACE(key);
    const TensorInfo& info = reader.info(key);
    EXPECT_EQ(info.dtype, entry.at("dtype").get<std::string>());
    EXPECT_EQ(info.shape, entry.at("shape").get<std::vector<int64_t>>());
    const auto tensor = reader.get(key);
    EXPECT_EQ(tensor.sizes().vec(), info.shape);
    // Compare as numbers (not via tensor_from_json) so that a wrong dtype mapping shows too.
    const auto flat = tensor.reshape({-1});
    const auto& values = entry.at("values");
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
    for (int64_t i = 0; i < flat.numel(); ++i) {
      if (tensor.is_floating_point()) {
        EXPECT_EQ(flat[i].item<double>(), values[i].get<double>()) << "index " << i;
      } else {
        EXPECT_EQ(flat[i].item<int64_t>(), values[i].get<int64_t>()) << "index " << i;
      }
    }
  }
}

TEST_P(SafetensorsFixtureFiles, WriterIsByteIdenticalToPythonLayout) {
  const std::string name = GetParam();
  const json expected = read_json(st_fixture(name + ".json"));
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [key, entry] : expected.at("tensors").items())
    tensors[key] = tensor_from_json(entry);
  const auto metadata = expected.at("metadata").get<std::map<std::string, std::string>>();
  save_safetensors(path("ours.safetensors"), tensors, metadata);
  EXPECT_EQ(read_file(path("ours.safetensors")), read_file(st_fixture(name + ".safetensors")));

  // And load -> save reproduces the file.
  std::map<std::string, std::string> loaded_metadata;
  const auto loaded = load_safetensors(st_fixture(name + ".safetensors"), &loaded_metadata);
  save_safetensors(path("resaved.safetensors"), loaded, loaded_metadata);
  EXPECT_EQ(read_file(path("resaved.safetensors")), read_file(st_fixture(name + ".safetensors")));
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsFixtureFiles,
                         ::testing::Values("mixed", "single", "names"),
                         [](const auto& info) { return info.param; });

TEST_F(SafetensorsFixture, SingleMatchesReferenceExample) {
  // The reference implementation's own serialization test: 64-byte header, no padding.
  const std::string bytes = read_file(st_fixture("single.safetensors"));
  EXPECT_EQ(bytes.substr(0, 8 + 64),
            u64le(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})");
  EXPECT_EQ(bytes.size(), 8u + 64u + 24u);
}

// --- hostile input -----------------------------------------------------------------------------

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":{}}})", dtype, shape, offsets);
}

TEST_F(SafetensorsHostile, MissingFileAndDirectory) {
  expect_load_error(path("nope.safetensors"), "no such file");
  fs::create_directories(path("dir.safetensors"));
  expect_load_error(path("dir.safetensors"), "not a regular file");
}

TEST_F(SafetensorsHostile, ShorterThanLengthField) {
  for (size_t n = 0; n < 8; ++n) {
    write_bytes(path("short"), std::string(n, '\x01'));
    expect_load_error(path("short"), fmt::format("file is {} bytes, too short", n));
  }
}

TEST_F(SafetensorsHostile, HeaderLengthBeyondFileOrLimit) {
  write_bytes(path("tb"), u64le(uint64_t{2} << 40) + "{}");
  expect_load_error(path("tb"),
                    "header claims 2.2 TB (2199023255552 bytes), but the file has only 2 bytes");
  write_bytes(path("max"), u64le(std::numeric_limits<uint64_t>::max()) + "{}");
  expect_load_error(path("max"), "header claims");
  write_bytes(path("one_more"), u64le(3) + "{}");
  expect_load_error(path("one_more"), "header claims 3 bytes");

  // Within the file but over the reference's 100 MB limit: a sparse file costs nothing.
  write_bytes(path("big"), u64le(150'000'000) + "{}");
  fs::resize_file(path("big"), 200'000'000);
  expect_load_error(path("big"), "header is 150.0 MB, more than the 100.0 MB limit");
}

struct BadHeader {
  const char* name;
  std::string header;
  uint64_t buffer_size;
  std::string expected;
};

TEST_F(SafetensorsHostile, InvalidHeaders) {
  const std::string f32_4 = entry("F32", "[1]", "[0,4]");
  std::string long_shape = "[1";
  for (int i = 0; i < 99; ++i) long_shape += ",1";
  long_shape += "]";
  const std::vector<BadHeader> cases = {
      {"empty header", "", 0, "header is not valid JSON"},
      {"truncated json", R"({"a":{"dtype":"F32")", 0, "header is not valid JSON"},
      {"trailing garbage", "{}x", 0, "header is not valid JSON"},
      {"invalid utf8 key", "{\"\xff\":{}}", 0, "header is not valid JSON"},
      {"nul byte", std::string("{\0}", 3), 0, "header is not valid JSON"},
      {"array root", "[1,2]", 0, "header must be a JSON object, got a list"},
      {"string root", R"("abc")", 0, "header must be a JSON object, got \"abc\""},
      {"number root", "42", 0, "header must be a JSON object"},
      {"entry number", R"({"a":5})", 0, "tensor 'a': expected an object"},
      {"entry list", R"({"a":[0,4]})", 0, "tensor 'a': expected an object"},
      {"missing dtype", R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': missing \"dtype\""},
      {"missing shape", R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4,
       "tensor 'a': missing \"shape\""},
      {"missing offsets", R"({"a":{"dtype":"F32","shape":[1]}})", 4,
       "tensor 'a': missing \"data_offsets\""},
      {"dtype number", R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4,
       "\"dtype\" must be a string, got 7"},
      {"unknown dtype", "{\"a\":" + entry("F99", "[1]", "[0,4]") + "}", 4,
       "tensor 'a': unknown dtype \"F99\""},
      {"lowercase dtype", "{\"a\":" + entry("f32", "[1]", "[0,4]") + "}", 4, "unknown dtype"},
      {"dtype torch lacks", "{\"a\":" + entry("U16", "[2]", "[0,4]") + "}", 4,
       "dtype U16 is not supported"},
      {"shape string", "{\"a\":" + entry("F32", "\"1\"", "[0,4]") + "}", 4,
       "\"shape\" must be a list of integers, got \"1\""},
      {"shape object", R"({"a":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})", 4,
       "\"shape\" must be a list of integers"},
      {"shape float", "{\"a\":" + entry("F32", "[1.0]", "[0,4]") + "}", 4,
       "shape must be a list of non-negative integers, got [1.0]"},
      {"shape bool", "{\"a\":" + entry("F32", "[true]", "[0,4]") + "}", 4, "non-negative integers"},
      {"shape beyond u64", "{\"a\":" + entry("F32", "[18446744073709551616]", "[0,4]") + "}", 4,
       "non-negative integers"},
      {"negative shape", "{\"a\":" + entry("F32", "[-2,-2]", "[0,16]") + "}", 16,
       "shape [-2,-2] has a negative dimension"},
      {"numel overflow", "{\"a\":" + entry("F32", "[4294967296,4294967296]", "[0,4]") + "}", 4,
       "shape [4294967296,4294967296] of F32 overflows a 64-bit size"},
      {"bytes overflow", "{\"a\":" + entry("F64", "[4611686018427387904]", "[0,0]") + "}", 0,
       "overflows a 64-bit size"},
      {"overflow hidden by 0", "{\"a\":" + entry("U8", "[0,4294967296,4294967296]", "[0,0]") + "}",
       0, "overflows a 64-bit size"},
      {"offsets one", "{\"a\":" + entry("F32", "[1]", "[4]") + "}", 4,
       "\"data_offsets\" must be [begin, end]"},
      {"offsets three", "{\"a\":" + entry("F32", "[1]", "[0,4,8]") + "}", 8, "\"data_offsets\""},
      {"offsets negative", "{\"a\":" + entry("F32", "[1]", "[-4,0]") + "}", 4, "\"data_offsets\""},
      {"offsets float", "{\"a\":" + entry("F32", "[1]", "[0,4.0]") + "}", 4, "\"data_offsets\""},
      {"offsets string", "{\"a\":" + entry("F32", "[1]", "\"0,4\"") + "}", 4, "\"data_offsets\""},
      {"begin after end", "{\"a\":" + entry("F32", "[1]", "[8,4]") + "}", 8,
       "data_offsets [8, 4] begin after they end"},
      {"size mismatch", "{\"a\":" + entry("F32", "[3]", "[0,8]") + "}", 8,
       "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12"},
      {"beyond buffer", "{\"a\":" + entry("F32", "[3]", "[0,12]") + "}", 8,
       "data_offsets [0, 12] go beyond the 8-byte data buffer"},
      {"huge offsets",
       "{\"a\":" + entry("U8", "[1]", "[18446744073709551614,18446744073709551615]") + "}", 1,
       "go beyond the 1-byte data buffer"},
      {"overlap", "{\"a\":" + f32_4 + ",\"b\":" + entry("F32", "[2]", "[2,10]") + "}", 10,
       "tensors 'a' [0, 4) and 'b' [2, 10) overlap"},
      {"same range", "{\"a\":" + f32_4 + ",\"b\":" + f32_4 + "}", 4, "overlap"},
      {"gap", "{\"a\":" + f32_4 + ",\"b\":" + entry("F32", "[1]", "[8,12]") + "}", 12,
       "data bytes [4, 8) before tensor 'b' belong to no tensor"},
      {"trailing bytes", "{\"a\":" + f32_4 + "}", 8,
       "data buffer has 8 bytes, but the tensors cover only 4"},
      {"metadata string", R"({"__metadata__":"pt"})", 0,
       "\"__metadata__\" must be an object of strings, got \"pt\""},
      {"metadata list", R"({"__metadata__":["pt"]})", 0, "\"__metadata__\" must be an object"},
      {"metadata number value", R"({"__metadata__":{"format":1}})", 0,
       "\"__metadata__\" value of 'format' must be a string, got 1"},
      {"metadata null value", R"({"__metadata__":{"format":null}})", 0,
       "value of 'format' must be a string, got null"},
      {"metadata list value", R"({"__metadata__":{"format":["pt"]}})", 0,
       "value of 'format' must be a string"},
      {"deep nesting", "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", 0,
       "expected an object"},
      {"deep nesting in entry", "{\"a\":{\"x\":" + std::string(100000, '[') + "}}", 0,
       "nests deeper than a safetensors header can"},
      {"deep root", std::string(1000000, '['), 0, "header must be a JSON object, got a list"},
      {"long shape", "{\"a\":" + entry("U8", long_shape, "[0,1]") + "}", 1,
       "header has a list with more than 64 items"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const std::string file = path(fmt::format("case{}.safetensors", i));
    write_bytes(file, st_bytes(cases[i].header, cases[i].buffer_size));
    expect_load_error(file, cases[i].expected);
  }
}

TEST_F(SafetensorsHostile, PaddingAndUnknownFieldsAreAccepted) {
  // Spaces after the JSON are the writers' padding; unknown entry fields are ignored, as the
  // reference does.
  const std::string header = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8],"extra":"x"}})"
                             "    \n\t ";
  std::string bytes = st_bytes(header, 0);
  const int32_t values[2] = {-5, 9};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  write_bytes(path("ok.safetensors"), bytes);
  expect_same(torch::tensor({-5, 9}, torch::kInt),
              SafetensorsReader(path("ok.safetensors")).get("a"), "a");
}

TEST_F(SafetensorsHostile, TruncatedFiles) {
  const std::string bytes = read_file(st_fixture("mixed.safetensors"));
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const std::vector<uint64_t> cuts = {0,
                                      1,
                                      7,
                                      8,
                                      9,
                                      8 + header_size / 2,
                                      8 + header_size - 1,
                                      8 + header_size,
                                      8 + header_size + 1,
                                      bytes.size() - 8,
                                      bytes.size() - 1};
  for (const uint64_t cut : cuts) {
    SCOPED_TRACE(cut);
    write_bytes(path("cut.safetensors"), bytes.substr(0, cut));
    expect_load_error(path("cut.safetensors"), "");
  }
  // Appending is as wrong as cutting.
  write_bytes(path("long.safetensors"), bytes + "x");
  expect_load_error(path("long.safetensors"), "the tensors cover only");
}

TEST_F(SafetensorsHostile, FlippedBytesNeverCrash) {
  // Every byte of the length and the header, flipped several ways: the file either loads (e.g. a
  // changed name) and every tensor can be read, or it fails with an lf::Error.
  for (const char* name : {"single.safetensors", "names.safetensors", "mixed.safetensors"}) {
    const std::string bytes = read_file(st_fixture(name));
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    // Patch one byte in place: truncating and rewriting a file per case is slow on ext4.
    write_bytes(path("flip.safetensors"), bytes);
    const int fd = ::open(path("flip.safetensors").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    auto poke = [&](size_t pos, char byte) { ASSERT_EQ(::pwrite(fd, &byte, 1, pos), 1); };
    int loaded = 0, rejected = 0;
    for (size_t pos = 0; pos < 8 + header_size; ++pos) {
      for (const unsigned mask : {0x01u, 0x02u, 0x08u, 0x20u, 0x80u, 0xffu}) {
        poke(pos, static_cast<char>(static_cast<unsigned char>(bytes[pos]) ^ mask));
        try {
          const SafetensorsReader reader(path("flip.safetensors"));
          for (const auto& key : reader.keys()) reader.get(key);
          ++loaded;
        } catch (const Error&) {
          ++rejected;
        }
        poke(pos, bytes[pos]);
      }
    }
    ::close(fd);
    EXPECT_GT(rejected, 0) << name;
    EXPECT_GT(loaded, 0) << name;
  }
}

}  // namespace
}  // namespace lf
