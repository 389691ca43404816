// torch.save checkpoints: the tensors that the pickle (pickle.h) names, built from the records of
// the zip archive (zip_archive.h). LibTorch's PyTorchStreamReader (miniz) and torch::jit::Unpickler
// are not used: both have crashed on crafted files (pytorch#74798, #94815), and the unpickler
// cannot skip Lightning's Python objects.
#include "io/torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "core/error.h"
#include "io/pickle.h"
#include "io/zip_archive.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "torch.save writes little-endian data, used here as is");

namespace lf {
namespace {

constexpr const char* kRead = "torch_checkpoint::read";
constexpr uint64_t kMaxPickleBytes = uint64_t{1} << 30;  // real ones are kB to a few MB

// Tensors from the storages the pickle names, each storage read (or mapped) once.
class TensorBuilder {
 public:
  TensorBuilder(const std::string& path, const MappedFile& file, const ZipArchive& zip,
                const std::string& prefix)
      : path_(path), file_(file), zip_(zip), prefix_(prefix) {}

  torch::Tensor build(const std::string& name, const pickle::TensorRef& t,
                      const pickle::StorageRef& s) {
    const int64_t elem = static_cast<int64_t>(c10::elementSize(s.dtype));
    // Elements the view spans; the product of the non-zero sizes must fit in int64 too.
    bool overflow = false, empty = false;
    int64_t extent = 1, last = t.offset;
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      if (t.sizes[d] == 0) empty = true;
      overflow |= __builtin_mul_overflow(extent, std::max<int64_t>(t.sizes[d], 1), &extent);
      int64_t step = 0;
      if (t.sizes[d] > 0) {
        overflow |= __builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &step);
        overflow |= __builtin_add_overflow(last, step, &last);
      }
    }
    if (overflow)
      fail(kRead, "{}: tensor '{}': size {} with strides {} overflows 64 bits", path_, name,
           shape_str(t.sizes), shape_str(t.strides));
    if (empty) return torch::empty(t.sizes, torch::TensorOptions().dtype(s.dtype));
    if (last >= s.numel)
      fail(kRead,
           "{}: tensor '{}': size {}, strides {} at offset {} reach element {} of a {}-element "
           "storage",
           path_, name, shape_str(t.sizes), shape_str(t.strides), t.offset, last, s.numel);
    torch::Tensor base = storage(name, s, elem);
    torch::Tensor view = base.as_strided(t.sizes, t.strides, t.offset);
    return view.is_contiguous() ? view : view.contiguous();
  }

 private:
  // The whole storage as a 1-D tensor: a view of the mapping when aligned, else a copy.
  torch::Tensor storage(const std::string& name, const pickle::StorageRef& s, int64_t elem) {
    const auto cached = cache_.find({s.key, static_cast<int>(s.dtype)});
    if (cached != cache_.end()) return cached->second;
    const std::string record = prefix_ + "/data/" + s.key;
    const ZipEntry* e = zip_.find(record);
    if (!e)
      fail(kRead, "{}: tensor '{}': its storage '{}' is missing (no record {})", path_, name, s.key,
           record);
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(s.numel), static_cast<uint64_t>(elem),
                               &bytes) ||
        bytes > e->size)
      fail(kRead, "{}: tensor '{}': storage '{}' claims {} elements of {} bytes, record holds {}",
           path_, name, s.key, s.numel, elem, e->size);
    const bool is_bool = s.dtype == torch::kBool;  // any byte but 0/1 must not reach a bool
    const auto raw = is_bool ? torch::kByte : s.dtype;
    const auto options = torch::TensorOptions().dtype(raw);
    torch::Tensor base;
    const uint64_t offset = e->method == 0 ? zip_.data_offset(record, *e) : 0;
    if (e->method == 0 && offset % 64 == 0) {
      std::shared_ptr<uint8_t> keep = file_.data;
      base = torch::from_blob(
          file_.data.get() + offset, {s.numel}, [keep](void*) mutable { keep.reset(); }, options);
    } else {
      auto buffer = torch::empty({static_cast<int64_t>(e->size)}, torch::kByte);
      zip_.extract(record, *e, buffer.data_ptr<uint8_t>());
      base = buffer.narrow(0, 0, static_cast<int64_t>(bytes)).view(raw);
    }
    if (is_bool) base = base.ne(0);
    cache_.emplace(std::make_pair(s.key, static_cast<int>(s.dtype)), base);
    return base;
  }

  const std::string& path_;
  const MappedFile& file_;
  const ZipArchive& zip_;
  const std::string& prefix_;
  std::map<std::pair<std::string, int>, torch::Tensor> cache_;
};

// The folder all records sit in ("archive", or the saved file's stem for torch < 2.0).
std::string archive_prefix(const std::string& path, const ZipArchive& zip) {
  std::string prefix;
  for (const auto& name : zip.names()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (!prefix.empty())
        fail(kRead, "{}: zip archive has two pickles ({}/data.pkl and {})", path, prefix, name);
      prefix = name.substr(0, slash);
    }
  }
  if (prefix.empty())
    fail(kRead, "{}: a zip archive without data.pkl: not a torch.save checkpoint", path);
  bool torchscript = zip.find(prefix + "/constants.pkl") != nullptr;
  for (const auto& name : zip.names()) torchscript |= name.rfind(prefix + "/code/", 0) == 0;
  if (torchscript)
    fail(kRead,
         "{}: a TorchScript archive (torch.jit.save); save the module's state_dict with "
         "torch.save instead",
         path);
  if (const ZipEntry* order = zip.find(prefix + "/byteorder")) {
    std::string text(order->size < 16 ? order->size : 0, '\0');
    if (!text.empty())
      zip.extract(prefix + "/byteorder", *order, reinterpret_cast<uint8_t*>(&text[0]));
    if (text != "little")
      fail(kRead, "{}: tensor data is stored '{}'-endian; only little-endian is supported", path,
           text);
  }
  return prefix;
}

[[noreturn]] void refuse_non_zip(const std::string& path, const MappedFile& file) {
  const uint8_t* p = file.data.get();
  const bool legacy_pickle = file.size >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5;
  const bool legacy_tar = file.size >= 262 && std::memcmp(p + 257, "ustar", 5) == 0;
  if (legacy_pickle || legacy_tar)
    fail(kRead,
         "{}: legacy (pre-1.6, non-zip) torch.save format, which is not read here; re-save it "
         "with PyTorch (torch.load runs code from the file: only for files you trust): python3 -c "
         "\"import torch; torch.save(torch.load('{}', map_location='cpu'), 'converted.ckpt')\"",
         path, path);
  fail(kRead, "{}: not a PyTorch checkpoint (expected a torch.save zip archive)", path);
}

TensorMap read_checkpoint(const std::string& path) {
  const MappedFile file = map_file(kRead, path);
  if (file.size < 4 || std::memcmp(file.data.get(), "PK", 2) != 0) refuse_non_zip(path, file);
  const ZipArchive zip(kRead, path, file);
  const std::string prefix = archive_prefix(path, zip);

  const std::string pickle_name = prefix + "/data.pkl";
  const ZipEntry& pe = *zip.find(pickle_name);
  if (pe.size > kMaxPickleBytes)
    fail(kRead, "{}: {} is {} bytes, more than the {} MiB limit", path, pickle_name, pe.size,
         kMaxPickleBytes >> 20);
  std::vector<uint8_t> bytes(pe.size);
  zip.extract(pickle_name, pe, bytes.data());
  const pickle::Graph graph =
      pickle::unpickle(kRead, path + ": " + pickle_name, bytes.data(), bytes.size());
  const uint32_t root = graph.root();

  if (graph.node(root).kind != pickle::Kind::Dict)
    fail(kRead, "{}: the checkpoint holds {}, expected a dict of tensors", path,
         pickle::kind_name(graph.node(root).kind));
  auto string_key = [&](uint32_t key) {
    return graph.node(key).kind == pickle::Kind::String ? &graph.text(key) : nullptr;
  };
  uint32_t dict = root;
  std::string what = "the top-level dict";
  const auto& top = graph.items(root);
  for (size_t i = 0; i + 1 < top.size(); i += 2) {
    const std::string* key = string_key(top[i]);
    if (key && *key == "state_dict" && graph.node(top[i + 1]).kind == pickle::Kind::Dict) {
      dict = top[i + 1];
      what = "its state_dict";
    }
  }

  TensorBuilder builder(path, file, zip, prefix);
  TensorMap tensors;
  const auto& entries = graph.items(dict);
  for (size_t i = 0; i + 1 < entries.size(); i += 2) {
    const std::string* key = string_key(entries[i]);
    const pickle::Node& value = graph.node(entries[i + 1]);
    if (!key) continue;
    if (value.kind == pickle::Kind::Object &&
        graph.text(entries[i + 1]).rfind("torch._utils.", 0) == 0)
      fail(kRead, "{}: tensor '{}' is rebuilt by {}, which is not supported (only dense tensors)",
           path, *key, graph.text(entries[i + 1]));
    if (value.kind != pickle::Kind::Tensor) continue;
    const pickle::TensorRef& t = graph.tensor(entries[i + 1]);
    tensors.insert_or_assign(*key, builder.build(*key, t, graph.storage(t.storage)));
  }
  if (tensors.empty()) {
    std::string keys;
    for (size_t i = 0; i + 1 < top.size() && i < 40; i += 2) {
      const std::string* key = string_key(top[i]);
      keys += (keys.empty() ? "" : ", ") + (key ? *key : std::string("<non-string>"));
    }
    fail(kRead, "{}: no tensors in {} (top-level keys: {})", path, what,
         keys.empty() ? "none" : keys);
  }
  return tensors;
}

}  // namespace

TensorMap read_torch_checkpoint(const std::string& path) {
  try {
    return read_checkpoint(path);
  } catch (const c10::Error& e) {  // a LibTorch check we did not anticipate: still one line
    fail(kRead, "{}: {}", path, e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    fail(kRead, "{}: out of memory while reading", path);
  }
}

}  // namespace lf
