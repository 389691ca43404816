// safetensors I/O: mmap reader that validates every header field, and a writer whose bytes match
// Python's safetensors. Own implementation: Debian ships no C++ safetensors library.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_snippet.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and copied as is");

namespace lf {

namespace {

using nlohmann::json;

constexpr const char* kLoad = "safetensors::load";
constexpr const char* kSave = "safetensors::save";
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit of the reference implementation
constexpr size_t kMaxRank = 64;

// rank: position in the reference library's Dtype enum; files are laid out by descending rank.
struct DtypeSpec {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
  int rank;
};

constexpr DtypeSpec kDtypes[] = {
    {"I64", torch::kLong, 8, 13}, {"F64", torch::kDouble, 8, 12},   {"F32", torch::kFloat, 4, 11},
    {"I32", torch::kInt, 4, 9},   {"BF16", torch::kBFloat16, 2, 8}, {"F16", torch::kHalf, 2, 7},
    {"I16", torch::kShort, 2, 5}, {"I8", torch::kChar, 1, 2},       {"U8", torch::kByte, 1, 1},
    {"BOOL", torch::kBool, 1, 0},
};
// Valid in the format, but LibTorch 1.13 has no matching type.
constexpr const char* kUnsupportedDtypes[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeSpec* find_dtype(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

std::string human_bytes(uint64_t n) {
  if (n < 1000) return fmt::format("{} bytes", n);
  const char* units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

// "3 bytes", or "2.2 TB (2199023255552 bytes)".
std::string exact_bytes(uint64_t n) {
  return n < 1000 ? human_bytes(n) : fmt::format("{} ({} bytes)", human_bytes(n), n);
}

// Thrown from the parse callback to stop before building values no valid header has.
struct HeaderRejected {
  std::string what;
};

// Parses the header text, refusing shapes of JSON that no safetensors header has before they are
// built, so that 100 MB of "[[[[..." or "[0,0,0,..." cannot make the parser allocate gigabytes.
json parse_header(const std::string& path, const char* text, uint64_t size) {
  using Event = json::parse_event_t;
  std::string key;   // last key of the root object
  size_t items = 0;  // values in the current list or object at depth 3
  auto limit = [&](int depth, Event event, json& parsed) {
    const bool start = event == Event::object_start || event == Event::array_start;
    if (event == Event::key && depth == 1) key = parsed.get<std::string>();
    if (start) items = 0;
    if (depth == 0 && event == Event::array_start)
      throw HeaderRejected{"header must be a JSON object, got a list"};
    if (depth == 1 && (event == Event::value || event == Event::array_start)) {
      const std::string got = event == Event::value ? json_snippet(parsed) : "a list";
      if (key == "__metadata__")
        throw HeaderRejected{"\"__metadata__\" must be an object of strings, got " + got};
      throw HeaderRejected{"tensor '" + key +
                           "': expected an object with dtype, shape and data_offsets, got " + got};
    }
    if (depth > 2 && start)
      throw HeaderRejected{"header nests deeper than a safetensors header can"};
    if (depth == 3 && event == Event::value && ++items > kMaxRank)
      throw HeaderRejected{fmt::format("header has a list with more than {} items", kMaxRank)};
    return true;
  };
  try {
    return json::parse(text, text + size, limit);
  } catch (const HeaderRejected& e) {
    fail(kLoad, "{}: {}", path, e.what);
  } catch (const json::exception& e) {
    std::string what = e.what();
    const auto close = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (close != std::string::npos) what = what.substr(close + 2);
    fail(kLoad, "{}: header is not valid JSON: {}", path, what);
  }
}

uint64_t checked_mul(uint64_t a, uint64_t b, bool& overflow) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) overflow = true;
  return r;
}

TensorInfo parse_entry(const std::string& path, const std::string& key, const json& entry,
                       uint64_t buffer_size) {
  if (!entry.is_object())
    fail(kLoad, "{}: tensor '{}': expected an object with dtype, shape and data_offsets, got {}",
         path, key, json_snippet(entry));
  auto field = [&](const char* name) -> const json& {
    const auto it = entry.find(name);
    if (it == entry.end()) fail(kLoad, "{}: tensor '{}': missing \"{}\"", path, key, name);
    return *it;
  };
  TensorInfo info;

  const json& dtype = field("dtype");
  if (!dtype.is_string())
    fail(kLoad, "{}: tensor '{}': \"dtype\" must be a string, got {}", path, key,
         json_snippet(dtype));
  info.dtype = dtype.get<std::string>();
  const DtypeSpec* spec = find_dtype(info.dtype);
  if (!spec) {
    for (const char* name : kUnsupportedDtypes)
      if (info.dtype == name)
        fail(kLoad, "{}: tensor '{}': dtype {} is not supported by LibTorch {} (supported: {})",
             path, key, name, TORCH_VERSION, supported_dtypes());
    fail(kLoad, "{}: tensor '{}': unknown dtype {} (expected one of {})", path, key,
         json_snippet(dtype), supported_dtypes());
  }

  const json& shape = field("shape");
  if (!shape.is_array())
    fail(kLoad, "{}: tensor '{}': \"shape\" must be a list of integers, got {}", path, key,
         json_snippet(shape));
  if (shape.size() > kMaxRank)
    fail(kLoad, "{}: tensor '{}': shape has {} dimensions, at most {} supported", path, key,
         shape.size(), kMaxRank);
  // numel may be 0, but the product of the non-zero sizes bounds torch's strides: keep it in int64.
  bool overflow = false;
  uint64_t numel = 1, extent = 1;
  for (const json& dim : shape) {
    if (dim.is_number_integer() && !dim.is_number_unsigned())
      fail(kLoad, "{}: tensor '{}': shape {} has a negative dimension", path, key,
           json_snippet(shape));
    if (!dim.is_number_unsigned())
      fail(kLoad, "{}: tensor '{}': shape must be a list of non-negative integers, got {}", path,
           key, json_snippet(shape));
    const uint64_t d = dim.get<uint64_t>();
    numel = checked_mul(numel, d, overflow);
    extent = checked_mul(extent, std::max<uint64_t>(d, 1), overflow);
    if (extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    info.shape.push_back(static_cast<int64_t>(d));  // d <= extent <= INT64_MAX unless overflow
  }
  const uint64_t nbytes = checked_mul(numel, spec->size, overflow);
  if (overflow)
    fail(kLoad, "{}: tensor '{}': shape {} of {} overflows a 64-bit size", path, key,
         json_snippet(shape), spec->name);

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail(kLoad, "{}: tensor '{}': \"data_offsets\" must be [begin, end] with integers >= 0, got {}",
         path, key, json_snippet(offsets));
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();
  if (info.begin > info.end)
    fail(kLoad, "{}: tensor '{}': data_offsets [{}, {}] begin after they end", path, key,
         info.begin, info.end);
  if (info.end > buffer_size)
    fail(kLoad, "{}: tensor '{}': data_offsets [{}, {}] go beyond the {}-byte data buffer", path,
         key, info.begin, info.end, buffer_size);
  if (info.end - info.begin != nbytes)
    fail(kLoad, "{}: tensor '{}': data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {}",
         path, key, info.begin, info.end, info.end - info.begin, shape_str(info.shape), spec->name,
         nbytes);
  return info;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
  if (!value.is_object())
    fail(kLoad, "{}: \"__metadata__\" must be an object of strings, got {}", path,
         json_snippet(value));
  std::map<std::string, std::string> metadata;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it.value().is_string())
      fail(kLoad, "{}: \"__metadata__\" value of '{}' must be a string, got {}", path, it.key(),
           json_snippet(it.value()));
    metadata.emplace(it.key(), it.value().get<std::string>());
  }
  return metadata;
}

struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    if (errno == ENOENT) fail(kLoad, "{}: no such file", path);
    fail(kLoad, "{}: cannot open: {}", path, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) fail(kLoad, "{}: cannot stat: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(kLoad, "{}: not a regular file", path);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    fail(kLoad, "{}: file is {} bytes, too short for the 8-byte header length", path, file_size);

  void* addr = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, file.fd, 0);
  if (addr == MAP_FAILED) fail(kLoad, "{}: cannot map: {}", path, std::strerror(errno));
  map_ = std::shared_ptr<const uint8_t>(
      static_cast<const uint8_t*>(addr),
      [file_size](const uint8_t* p) { ::munmap(const_cast<uint8_t*>(p), file_size); });

  uint64_t header_size = 0;
  std::memcpy(&header_size, map_.get(), 8);
  if (header_size > file_size - 8)
    fail(kLoad, "{}: header claims {}, but the file has only {} after its length", path,
         exact_bytes(header_size), human_bytes(file_size - 8));
  if (header_size > kMaxHeaderBytes)
    fail(kLoad, "{}: header is {}, more than the {} limit", path, human_bytes(header_size),
         human_bytes(kMaxHeaderBytes));
  data_start_ = 8 + header_size;
  const uint64_t buffer_size = file_size - data_start_;

  const json header =
      parse_header(path, reinterpret_cast<const char*>(map_.get()) + 8, header_size);
  if (!header.is_object())
    fail(kLoad, "{}: header must be a JSON object, got {}", path, json_snippet(header));
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      metadata_ = parse_metadata(path, it.value());
    } else {
      infos_.emplace(it.key(), parse_entry(path, it.key(), it.value(), buffer_size));
      order_.push_back(it.key());
    }
  }

  // The tensors must tile the buffer exactly: no overlap, no gap, nothing after the last one.
  std::sort(order_.begin(), order_.end(), [&](const std::string& a, const std::string& b) {
    const TensorInfo &x = infos_.at(a), &y = infos_.at(b);
    return std::tie(x.begin, x.end, a) < std::tie(y.begin, y.end, b);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const std::string& key : order_) {
    const TensorInfo& info = infos_.at(key);
    if (info.begin < covered)
      fail(kLoad, "{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", path, *previous,
           infos_.at(*previous).begin, infos_.at(*previous).end, key, info.begin, info.end);
    if (info.begin > covered)
      fail(kLoad, "{}: data bytes [{}, {}) before tensor '{}' belong to no tensor", path, covered,
           info.begin, key);
    covered = info.end;
    previous = &key;
  }
  if (covered != buffer_size)
    fail(kLoad, "{}: data buffer has {} bytes, but the tensors cover only {}", path, buffer_size,
         covered);
}

std::vector<std::string> SafetensorsReader::keys() const {
  return order_;
}

bool SafetensorsReader::contains(const std::string& key) const {
  return infos_.count(key) > 0;
}

const TensorInfo& SafetensorsReader::info(const std::string& key) const {
  const auto it = infos_.find(key);
  if (it == infos_.end())
    fail("safetensors::info", "{}: no tensor named '{}' ({} tensors in the file)", path_, key,
         infos_.size());
  return it->second;
}

torch::Tensor SafetensorsReader::get(const std::string& key) const {
  const TensorInfo& info = this->info(key);
  const DtypeSpec* spec = find_dtype(info.dtype);  // validated on open
  auto tensor = torch::empty(info.shape, torch::TensorOptions().dtype(spec->type));
  if (info.end > info.begin)
    std::memcpy(tensor.data_ptr(), map_.get() + data_start_ + info.begin, info.end - info.begin);
  return tensor;
}

std::map<std::string, torch::Tensor> load_safetensors(
    const std::string& path, std::map<std::string, std::string>* metadata) {
  const SafetensorsReader reader(path);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& key : reader.keys()) tensors.emplace(key, reader.get(key));
  if (metadata) *metadata = reader.metadata();
  return tensors;
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Entry {
    const std::string* name;
    const torch::Tensor* tensor;
    const DtypeSpec* spec;
    uint64_t nbytes;
  };
  std::vector<Entry> entries;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__")
      fail(kSave, "{}: \"__metadata__\" is reserved and cannot name a tensor", path);
    if (!tensor.defined()) fail(kSave, "{}: tensor '{}' is undefined", path, name);
    const DtypeSpec* spec = find_dtype(tensor.scalar_type());
    if (!spec)
      fail(kSave, "{}: tensor '{}' has dtype {}, which cannot be stored (supported: {})", path,
           name, c10::toString(tensor.scalar_type()), supported_dtypes());
    entries.push_back({&name, &tensor, spec, static_cast<uint64_t>(tensor.numel()) * spec->size});
  }
  // Same order as the reference: dtype rank descending, then name (the map is already sorted).
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.spec->rank > b.spec->rank; });

  using ordered_json = nlohmann::ordered_json;
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json& m = header["__metadata__"] = ordered_json::object();
    for (const auto& [key, value] : metadata) m[key] = value;
  }
  uint64_t offset = 0;
  for (const Entry& e : entries) {
    ordered_json& entry = header[*e.name] = ordered_json::object();
    entry["dtype"] = e.spec->name;
    entry["shape"] = e.tensor->sizes().vec();
    entry["data_offsets"] = ordered_json::array({offset, offset + e.nbytes});
    offset += e.nbytes;
  }
  std::string text;
  try {
    text = header.dump();  // compact, UTF-8 kept as is: the reference's serde_json output
  } catch (const nlohmann::json::exception& e) {
    fail(kSave, "{}: tensor names and metadata must be valid UTF-8: {}", path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile file(path);
  const uint64_t header_size = text.size();
  file.write(&header_size, 8);
  file.write(text);
  for (const Entry& e : entries) {
    // One tensor at a time on the CPU, so saving a GPU model needs little host memory.
    const torch::Tensor t =
        e.tensor->detach().to(torch::kCPU).resolve_conj().resolve_neg().contiguous();
    file.write(t.data_ptr(), e.nbytes);
  }
  file.commit();
}

}  // namespace lf
