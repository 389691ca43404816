// torch.save checkpoints: parity with files written by PyTorch 1.13
// (scripts/make_import_fixtures.py), and an lf::Error, never a crash, for every kind of broken or
// hostile archive and pickle.
#include "io/torch_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/torch_zip_util.h"

namespace lf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::Pickle;
using test::Records;
using namespace std::string_literals;

std::string ckpt_fixture(const std::string& name) {
  return std::string(LF_TEST_DATA_DIR) + "/import/" + name;
}

torch::ScalarType dtype_of(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"F32", torch::kFloat},  {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
      {"F64", torch::kDouble}, {"I64", torch::kLong}, {"I32", torch::kInt},
      {"I16", torch::kShort},  {"I8", torch::kChar},  {"U8", torch::kByte},
      {"BOOL", torch::kBool}};
  return kTypes.at(name);
}

// Same keys, dtypes, shapes and (exactly) values as NAME.json.
void expect_matches_fixture(const TensorMap& tensors, const std::string& json_name) {
  const json expected = json::parse(test::read_bytes(ckpt_fixture(json_name)));
  ASSERT_EQ(tensors.size(), expected.size());
  for (const auto& [key, e] : expected.items()) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(tensors.count(key));
    const torch::Tensor& t = tensors.at(key);
    EXPECT_EQ(t.scalar_type(), dtype_of(e["dtype"]));
    EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>());
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_TRUE(t.device().is_cpu());
    const auto values = t.to(torch::kDouble).flatten();
    const auto want = e["values"].get<std::vector<double>>();
    ASSERT_EQ(values.numel(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(values[static_cast<int64_t>(i)].item<double>(), want[i]) << "element " << i;
  }
}

class TorchCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / fmt::format("lf_ckpt_{}_{}", info->name(), ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    test::write_bytes(path, bytes);
    return path;
  }
  // An archive "archive/..." with the pickle and storages "0", "1", ...
  std::string archive(const std::string& pickle, const std::vector<std::string>& storages = {},
                      const std::string& name = "x.ckpt", bool deflated = false,
                      bool zip64 = false) {
    Records records = {{"archive/data.pkl", pickle}};
    for (size_t i = 0; i < storages.size(); ++i)
      records.emplace_back("archive/data/" + std::to_string(i), storages[i]);
    records.emplace_back("archive/version", "3\n");
    return write(name, test::make_zip(records, deflated, zip64));
  }

  // Reads `path` expecting an lf::Error naming the file and containing `expected`.
  static void expect_error(const std::string& path, const std::string& expected) {
    try {
      read_torch_checkpoint(path);
      ADD_FAILURE() << path << " was read; expected an error containing: " << expected;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("[torch_checkpoint::read] " + path + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(expected), std::string::npos)
          << "expected '" << expected << "' in: " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  // Reads `path`, which may fail, but only with an lf::Error.
  static void expect_no_crash(const std::string& path, const std::string& what) {
    try {
      read_torch_checkpoint(path);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not an lf::Error: " << e.what();
    }
  }

  fs::path dir_;
};

// A dict {name: float tensor of 4 elements in storage "0"} and that storage.
std::string one_tensor_pickle(int64_t numel = 4, int64_t offset = 0,
                              std::vector<int64_t> size = {4}, std::vector<int64_t> stride = {1},
                              const std::string& type = "FloatStorage") {
  return Pickle()
      .op('}')
      .mark()
      .str("w")
      .tensor(type, "0", numel, offset, size, stride)
      .op('u')
      .stop();
}
std::string four_floats() {
  const float v[4] = {1.5f, -2.0f, 3.25f, 0.0f};
  return std::string(reinterpret_cast<const char*>(v), sizeof(v));
}

TEST_F(TorchCheckpointTest, ReadsTheStateDictOfALightningCheckpoint) {
  const TensorMap tensors = read_torch_checkpoint(ckpt_fixture("lightning.ckpt"));
  expect_matches_fixture(tensors, "lightning.json");
  // Neither optimizer states nor hyper-parameters leak in.
  EXPECT_FALSE(tensors.count("exp_avg"));
  EXPECT_FALSE(tensors.count("epoch"));
}

TEST_F(TorchCheckpointTest, ReadsABareDictSavedWithProtocol4) {
  expect_matches_fixture(read_torch_checkpoint(ckpt_fixture("bare.pt")), "bare.json");
}

TEST_F(TorchCheckpointTest, TensorsAreWritableAndWritesDoNotReachTheFile) {
  const std::string path = write("copy.ckpt", test::read_bytes(ckpt_fixture("lightning.ckpt")));
  const std::string before = test::read_bytes(path);
  {
    TensorMap tensors = read_torch_checkpoint(path);
    tensors.at("encoder.conv_in.weight").fill_(7.0f);
    tensors.at("stats.bool").fill_(false);
    EXPECT_EQ(tensors.at("encoder.conv_in.weight").sum().item<float>(), 7.0f * 108);
  }
  EXPECT_EQ(test::read_bytes(path), before);
  expect_matches_fixture(read_torch_checkpoint(path), "lightning.json");
}

TEST_F(TorchCheckpointTest, TensorsOutliveEachOtherAndTheirSiblings) {
  torch::Tensor kept;
  {
    const TensorMap tensors = read_torch_checkpoint(ckpt_fixture("lightning.ckpt"));
    kept = tensors.at("view.offset");
  }
  const auto base = torch::arange(40, torch::kFloat).reshape({5, 8}) * 0.25 - 3.0;
  EXPECT_TRUE(torch::equal(kept, base.slice(0, 1, 4).slice(1, 2, 7, 2)));
}

TEST_F(TorchCheckpointTest, ReadsBuiltArchivesStoredDeflatedAndZip64) {
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    const bool deflated = variant & 1, zip64 = variant & 2;
    const TensorMap t = read_torch_checkpoint(
        archive(one_tensor_pickle(), {four_floats()}, "x.ckpt", deflated, zip64));
    ASSERT_EQ(t.size(), 1u);
    EXPECT_TRUE(torch::equal(t.at("w"), torch::tensor({1.5f, -2.0f, 3.25f, 0.0f})));
  }
}

TEST_F(TorchCheckpointTest, BoolBytesOtherThanZeroAndOneReadAsTrue) {
  const TensorMap t = read_torch_checkpoint(
      archive(one_tensor_pickle(3, 0, {3}, {1}, "BoolStorage"), {std::string("\x00\x02\x01", 3)}));
  EXPECT_EQ(t.at("w").scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(t.at("w"), torch::tensor({false, true, true})));
}

TEST_F(TorchCheckpointTest, RefusesLegacyFilesWithAConversionHint) {
  expect_error(ckpt_fixture("legacy.pt"), "legacy (pre-1.6, non-zip) torch.save format");
  expect_error(ckpt_fixture("legacy.pt"), "torch.save(torch.load(");
}

TEST_F(TorchCheckpointTest, RefusesFilesThatAreNotCheckpoints) {
  expect_error(write("text.ckpt", "hello, world"), "not a PyTorch checkpoint");
  expect_error(write("empty.ckpt", ""), "file is empty");
  expect_error((dir_ / "missing.ckpt").string(), "no such file");
  expect_error(write("pk.ckpt", "PK\x03\x04 and then nothing like a zip archive"),
               "end of central directory");
  expect_error(write("nopkl.ckpt", test::make_zip({{"a/b.txt", "x"}})), "without data.pkl");
  expect_error(write("script.pt", test::make_zip({{"m/data.pkl", Pickle().op('}').stop()},
                                                  {"m/constants.pkl", "x"}})),
               "TorchScript archive");
  expect_error(write("be.pt", test::make_zip({{"archive/data.pkl", one_tensor_pickle()},
                                              {"archive/byteorder", "big"}})),
               "only little-endian");
}

TEST_F(TorchCheckpointTest, RefusesACorruptRecord) {
  std::string bytes = test::read_bytes(ckpt_fixture("lightning.ckpt"));
  const size_t at = bytes.find("epoch");  // inside data.pkl
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'E';
  expect_error(write("crc.ckpt", bytes), "is corrupt (CRC-32");
}

TEST_F(TorchCheckpointTest, RefusesBrokenPickles) {
  const std::string p2 = "\x80\x02";
  const std::pair<std::string, std::string> cases[] = {
      {p2 + "\xff"s, "unsupported pickle opcode 0xff"},
      {p2 + "I01\n."s, "protocol-0 opcode 'I'"},
      {"\x80\x09}.", "pickle protocol 9"},
      {p2 + "X\xff\xff\xff\xff"s, "pickle is truncated"},
      {p2 + "\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"s,  // a huge length, refused unallocated
       "pickle is truncated: 9223372036854775807 bytes needed, 0 of its 11 bytes left"},
      {p2 + "}"s, "pickle is truncated"},
      {p2 + "."s, "stack underflow"},
      {p2 + "(."s, "stack underflow"},
      {p2 + "}(X\x01\x00\x00\x00ka"s, "stack underflow"},
      {p2 + "X\x01\x00\x00\x00kt"s, "no MARK"},
      {p2 + "}(X\x01\x00\x00\x00ku."s, "odd number"},
      {p2 + "h\x05"s, "memo has no entry 5"},
      {p2 + "cmodule_without_newline"s, "truncated inside a GLOBAL"},
      {p2 + "}]a."s, "APPEND to a dict"},
      {p2 + "](X\x01\x00\x00\x00kX\x01\x00\x00\x00vu."s, "SETITEM on a list"},
      {p2 + "X\x01\x00\x00\x00kQ."s, "persistent id is a string"},
      {p2 + "(X\x03\x00\x00\x00"
            "abcJ\x00\x00\x00\x00tQ."s,
       "unsupported persistent id"},
      {p2 + "]."s, "the checkpoint holds a list, expected a dict"},
      {p2 + "}(X\x05\x00\x00\x00"
            "epochK\x01u."s,
       "no tensors in the top-level dict (top-level keys: epoch)"},
      {p2 + "\x8b\xff\xff\xff\xff"s, "LONG4 with negative length"},
  };
  for (const auto& [pickle, expected] : cases) {
    SCOPED_TRACE(expected);
    expect_error(archive(pickle), expected);
  }
}

TEST_F(TorchCheckpointTest, RefusesTensorsOutsideTheirStorage) {
  const std::string data = four_floats();
  const int64_t big = int64_t{1} << 40;
  const std::tuple<std::string, std::vector<std::string>, std::string> cases[] = {
      {one_tensor_pickle(4, 0, {5}, {1}), {data}, "reach element 4 of a 4-element storage"},
      {one_tensor_pickle(4, 4, {1}, {1}), {data}, "reach element 4 of a 4-element storage"},
      {one_tensor_pickle(4, 0, {2, 2}, {3, 1}), {data}, "reach element 4"},
      {one_tensor_pickle(5, 0, {5}, {1}), {data}, "claims 5 elements of 4 bytes, record holds 16"},
      {one_tensor_pickle(int64_t{1} << 62, 0, {4}, {1}), {data}, "claims"},
      {one_tensor_pickle(4, 0, {big, big}, {1, 1}), {data}, "overflows 64 bits"},
      {one_tensor_pickle(4, big, {1}, {1}), {data}, "reach element 1099511627776"},
      {one_tensor_pickle(4, INT64_MAX - 1, {4}, {1}), {data}, "overflows 64 bits"},
      {one_tensor_pickle(4, 0, {-1}, {1}), {data}, "negative value -1"},
      {one_tensor_pickle(4, -1, {1}, {1}), {data}, "negative storage offset"},
      {one_tensor_pickle(4, 0, {4}, {1, 1}), {data}, "size has 1 dimensions, stride 2"},
      {one_tensor_pickle(4, 0, std::vector<int64_t>(65, 1), std::vector<int64_t>(65, 1)),
       {data},
       "65 dimensions"},
      {one_tensor_pickle(), {}, "storage '0' is missing (no record archive/data/0)"},
      {one_tensor_pickle(4, 0, {4}, {1}, "QInt8Storage"), {data}, "unsupported storage type"},
  };
  for (const auto& [pickle, storages, expected] : cases) {
    SCOPED_TRACE(expected);
    expect_error(archive(pickle, storages), expected);
  }
}

TEST_F(TorchCheckpointTest, EmptyTensorsNeedNoData) {
  const TensorMap t =
      read_torch_checkpoint(archive(one_tensor_pickle(0, 0, {0, int64_t{1} << 40}, {1, 1}), {""}));
  EXPECT_EQ(t.at("w").sizes().vec(), (std::vector<int64_t>{0, int64_t{1} << 40}));
}

TEST_F(TorchCheckpointTest, RefusesTensorKindsItCannotRebuild) {
  const std::string pickle = Pickle()
                                 .op('}')
                                 .mark()
                                 .str("q")
                                 .global("torch._utils", "_rebuild_qtensor")
                                 .op(')')
                                 .op('R')
                                 .op('u')
                                 .stop();
  expect_error(archive(pickle), "tensor 'q' is rebuilt by torch._utils._rebuild_qtensor");
}

TEST_F(TorchCheckpointTest, OtherObjectsAreInertPlaceholders) {
  // {"obj": os.system("rm -rf /"), "ns": argparse.Namespace() with state, "w": tensor}
  const std::string pickle = Pickle()
                                 .op('}')
                                 .mark()
                                 .str("obj")
                                 .global("os", "system")
                                 .str("rm -rf /")
                                 .op('\x85')
                                 .op('R')
                                 .str("ns")
                                 .global("argparse", "Namespace")
                                 .op(')')
                                 .op('\x81')
                                 .op('}')
                                 .op('b')
                                 .str("w")
                                 .tensor("FloatStorage", "0", 4, 0, {2, 2}, {1, 2})
                                 .op('u')
                                 .stop();
  const TensorMap t = read_torch_checkpoint(archive(pickle, {four_floats()}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(torch::equal(t.at("w"), torch::tensor({1.5f, 3.25f, -2.0f, 0.0f}).reshape({2, 2})));
  EXPECT_TRUE(t.at("w").is_contiguous());
}

TEST_F(TorchCheckpointTest, DeepNestingAndCyclesNeitherRecurseNorLeak) {
  const int depth = 1'000'000;
  Pickle p;
  p.op('}').mark().str("deep");
  for (int i = 0; i < depth; ++i) p.op(']');
  for (int i = 1; i < depth; ++i) p.op('a');
  p.str("cycle")
      .op(']')
      .op('q')
      .raw(std::string(1, '\0'))
      .op('h')
      .raw(std::string(1, '\0'))
      .op('a');
  p.str("w").tensor("FloatStorage", "0", 4, 0, {4}, {1}).op('u');
  const TensorMap t = read_torch_checkpoint(archive(p.stop(), {four_floats()}));
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(TorchCheckpointTest, TruncatedFilesFailCleanly) {
  const std::string bytes = test::read_bytes(ckpt_fixture("lightning.ckpt"));
  for (size_t n = 0; n < bytes.size(); n += (n + 2048 < bytes.size() ? 41 : 1)) {
    const std::string path = write("cut.ckpt", bytes.substr(0, n));
    expect_error(path, "");
  }
}

// Every byte of the central directory and end records, and of the first local header, of the
// PyTorch-written fixture and of a ZIP64 rewrite of it (directory entries with 64-bit extras).
TEST_F(TorchCheckpointTest, DamagedZipStructureFailsCleanly) {
  const std::string torch_written = test::read_bytes(ckpt_fixture("lightning.ckpt"));
  const std::string zip64 = test::make_zip(test::read_zip(torch_written), false, true);
  ASSERT_EQ(read_torch_checkpoint(write("zip64.ckpt", zip64)).size(), 15u);
  for (const std::string& bytes : {torch_written, zip64}) {
    const size_t first_entry = bytes.find(std::string("PK\x01\x02"));
    ASSERT_NE(first_entry, std::string::npos);
    std::vector<size_t> positions;
    for (size_t i = first_entry; i < bytes.size(); ++i) positions.push_back(i);
    for (size_t i = 0; i < 64; ++i) positions.push_back(i);
    for (size_t i : positions)
      for (uint8_t flip : {0xff, 0x01, 0x80}) {
        std::string damaged = bytes;
        damaged[i] = static_cast<char>(damaged[i] ^ flip);
        expect_no_crash(write("damaged.ckpt", damaged), fmt::format("byte {} ^ {}", i, flip));
      }
  }
}

TEST_F(TorchCheckpointTest, MutatedPicklesFailCleanlyOrRead) {
  const Records original = test::read_zip(test::read_bytes(ckpt_fixture("lightning.ckpt")));
  ASSERT_EQ(original.front().first, "lightning/data.pkl");
  const std::string pickle = original.front().second;
  auto with_pickle = [&](const std::string& p) {
    Records records = original;
    records.front().second = p;
    return write("mutated.ckpt", test::make_zip(records));
  };
  EXPECT_EQ(read_torch_checkpoint(with_pickle(pickle)).size(), 15u);  // the rebuilt zip reads
  for (size_t i = 0; i < pickle.size(); ++i) {
    for (int variant = 0; variant < 3; ++variant) {
      std::string p = pickle;
      p[i] = variant == 0   ? static_cast<char>(p[i] ^ 0xff)
             : variant == 1 ? static_cast<char>(p[i] + 1)
                            : '\0';
      expect_no_crash(with_pickle(p), fmt::format("byte {} variant {}", i, variant));
    }
    if (i % 7 == 0) expect_no_crash(with_pickle(pickle.substr(0, i)), fmt::format("cut {}", i));
  }
}

}  // namespace
}  // namespace lf
