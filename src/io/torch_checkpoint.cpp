// torch.save checkpoints: a zip reader and a pickle interpreter of our own. LibTorch's
// PyTorchStreamReader (miniz) and torch::jit::Unpickler are not used: both have crashed on
// crafted files (pytorch#74798, #94815), and the unpickler cannot skip Lightning's Python objects.
#include "io/torch_checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "torch.save writes little-endian data, used here as is");

namespace lf {
namespace {

constexpr const char* kRead = "torch_checkpoint::read";
constexpr uint64_t kMaxPickleBytes = uint64_t{1} << 30;   // real ones are kB to a few MB
constexpr uint64_t kMaxPickleMemory = uint64_t{2} << 30;  // what unpacking it may allocate
constexpr size_t kMaxRank = 64;

// Little-endian integers of the zip format (the host is little-endian, asserted above).
template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
const auto u16 = load<uint16_t>;
const auto u32 = load<uint32_t>;
const auto u64 = load<uint64_t>;

// The whole file, mapped private and writable: pages written through a tensor are copied.
struct Mapping {
  std::shared_ptr<uint8_t> data;
  uint64_t size = 0;
};

Mapping map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail(kRead, "{}: no such file", path);
    fail(kRead, "{}: cannot open: {}", path, std::strerror(errno));
  }
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd);
    if (!stat_ok) fail(kRead, "{}: cannot stat: {}", path, std::strerror(stat_errno));
    fail(kRead, "{}: not a regular file", path);
  }
  Mapping m;
  m.size = static_cast<uint64_t>(st.st_size);
  if (m.size == 0) {
    ::close(fd);
    fail(kRead, "{}: file is empty", path);
  }
  // NORESERVE: a private writable mapping would otherwise be charged in full against the
  // overcommit limit, though only pages written through a tensor ever get copied.
  void* addr = ::mmap(nullptr, m.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (addr == MAP_FAILED) fail(kRead, "{}: cannot map: {}", path, std::strerror(map_errno));
  const uint64_t size = m.size;
  m.data = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(addr),
                                    [size](uint8_t* p) { ::munmap(p, size); });
  return m;
}

// ---------------------------------------------------------------------------------------------
// Zip: the central directory (with ZIP64), stored or deflated records.

struct ZipEntry {
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0, size = 0, header = 0;
};

class ZipArchive {
 public:
  ZipArchive(const std::string& path, const Mapping& file) : path_(path), file_(file) {
    read_directory();
  }

  const std::vector<std::string>& names() const { return names_; }
  const ZipEntry* find(const std::string& name) const {
    const auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // Offset of a stored record's first byte in the file (validated).
  uint64_t data_offset(const std::string& name, const ZipEntry& e) const {
    const uint8_t* base = file_.data.get();
    if (e.header > file_.size || file_.size - e.header < 30 || u32(base + e.header) != 0x04034b50)
      fail(kRead, "{}: zip record '{}': no local header at offset {}", path_, name, e.header);
    const uint64_t begin = e.header + 30 + u16(base + e.header + 26) + u16(base + e.header + 28);
    if (begin > file_.size || file_.size - begin < e.compressed)
      fail(kRead, "{}: zip record '{}': {} bytes at offset {} go beyond the {}-byte file", path_,
           name, e.compressed, begin, file_.size);
    return begin;
  }
  // The record's bytes into `out` (out_size == e.size), inflating if needed; CRC checked.
  void extract(const std::string& name, const ZipEntry& e, uint8_t* out) const {
    const uint8_t* src = file_.data.get() + data_offset(name, e);
    if (e.method == 0) {
      if (e.size) std::memcpy(out, src, e.size);
    } else {
      inflate_into(name, e, src, out);
    }
    check_crc(name, e, out);
  }
  void check_crc(const std::string& name, const ZipEntry& e, const uint8_t* data) const {
    const uint32_t crc = static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), data, e.size));
    if (crc != e.crc)
      fail(kRead, "{}: zip record '{}' is corrupt (CRC-32 {:08x}, expected {:08x})", path_, name,
           crc, e.crc);
  }

 private:
  void read_directory() {
    const uint8_t* base = file_.data.get();
    const uint64_t size = file_.size;
    // End of central directory: 22 bytes + a comment of up to 64 kB, at the end of the file.
    if (size < 22) fail(kRead, "{}: file is {} bytes, too short for a zip archive", path_, size);
    uint64_t eocd = size - 22;
    const uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
    while (true) {
      if (u32(base + eocd) == 0x06054b50 && 22 + uint64_t{u16(base + eocd + 20)} <= size - eocd)
        break;
      if (eocd == lowest) fail(kRead, "{}: zip end of central directory not found", path_);
      --eocd;
    }
    if (u16(base + eocd + 4) != 0 || u16(base + eocd + 6) != 0)
      fail(kRead, "{}: multi-volume zip archives are not supported", path_);
    uint64_t count = u16(base + eocd + 10), dir_size = u32(base + eocd + 12),
             dir_offset = u32(base + eocd + 16);
    if (eocd >= 20 && u32(base + eocd - 20) == 0x07064b50) {  // ZIP64 locator
      const uint64_t at = u64(base + eocd - 20 + 8);
      if (at > eocd - 20 || eocd - 20 - at < 56 || u32(base + at) != 0x06064b50)
        fail(kRead, "{}: ZIP64 end of central directory not found at offset {}", path_, at);
      count = u64(base + at + 32);
      dir_size = u64(base + at + 40);
      dir_offset = u64(base + at + 48);
    }
    if (dir_offset > size || size - dir_offset < dir_size)
      fail(kRead, "{}: zip central directory ({} bytes at offset {}) lies beyond the {}-byte file",
           path_, dir_size, dir_offset, size);
    if (count > dir_size / 46)
      fail(kRead, "{}: zip central directory of {} bytes cannot hold {} entries", path_, dir_size,
           count);
    uint64_t at = dir_offset;
    const uint64_t end = dir_offset + dir_size;
    for (uint64_t i = 0; i < count; ++i) {
      if (end - at < 46 || u32(base + at) != 0x02014b50)
        fail(kRead, "{}: zip central directory entry {} is malformed", path_, i);
      const uint8_t* h = base + at;
      ZipEntry e;
      e.flags = u16(h + 8);
      e.method = u16(h + 10);
      e.crc = u32(h + 16);
      e.compressed = u32(h + 20);
      e.size = u32(h + 24);
      e.header = u32(h + 42);
      const uint64_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
      if (end - at - 46 < name_len + extra_len + comment_len)
        fail(kRead, "{}: zip central directory entry {} runs past the directory", path_, i);
      std::string name(reinterpret_cast<const char*>(h + 46), name_len);
      read_zip64_extra(name, h + 46 + name_len, extra_len, e);
      if (e.flags & 1) fail(kRead, "{}: zip record '{}' is encrypted", path_, name);
      if (e.method != 0 && e.method != 8)
        fail(kRead, "{}: zip record '{}' uses compression method {} (only stored and deflate)",
             path_, name, e.method);
      if (e.method == 0 && e.compressed != e.size)
        fail(kRead, "{}: zip record '{}' is stored but claims {} bytes packed, {} unpacked", path_,
             name, e.compressed, e.size);
      if (!entries_.emplace(name, e).second)
        fail(kRead, "{}: zip archive has two records named '{}'", path_, name);
      names_.push_back(std::move(name));
      at += 46 + name_len + extra_len + comment_len;
    }
  }

  // ZIP64 extended information: 64-bit values for the fields that hold 0xFFFFFFFF.
  void read_zip64_extra(const std::string& name, const uint8_t* p, uint64_t n, ZipEntry& e) const {
    const bool need_size = e.size == 0xFFFFFFFF, need_packed = e.compressed == 0xFFFFFFFF,
               need_header = e.header == 0xFFFFFFFF;
    while (n >= 4) {
      const uint16_t id = u16(p), len = u16(p + 2);
      if (len > n - 4) break;
      if (id == 0x0001) {
        const uint8_t* f = p + 4;
        uint64_t left = len;
        auto take = [&](bool needed, uint64_t& field) {
          if (!needed) return;
          if (left < 8) fail(kRead, "{}: zip record '{}': ZIP64 field is truncated", path_, name);
          field = u64(f);
          f += 8;
          left -= 8;
        };
        take(need_size, e.size);
        take(need_packed, e.compressed);
        take(need_header, e.header);
        return;
      }
      p += 4 + len;
      n -= 4 + len;
    }
    if (need_size || need_packed || need_header)
      fail(kRead, "{}: zip record '{}' lacks its ZIP64 sizes", path_, name);
  }

  void inflate_into(const std::string& name, const ZipEntry& e, const uint8_t* src,
                    uint8_t* out) const {
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
      fail(kRead, "{}: zip record '{}': cannot start inflate", path_, name);
    uint64_t in_left = e.compressed, out_left = e.size;
    int rc = Z_OK;
    while (rc == Z_OK) {
      // zlib counts in 32 bits: feed at most 1 GiB at a time.
      const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
      z.next_in = const_cast<Bytef*>(src);
      z.avail_in = in_chunk;
      z.next_out = out;
      z.avail_out = out_chunk;
      rc = ::inflate(&z, Z_NO_FLUSH);
      const uInt used_in = in_chunk - z.avail_in, used_out = out_chunk - z.avail_out;
      src += used_in;
      in_left -= used_in;
      out += used_out;
      out_left -= used_out;
      if (rc == Z_OK && used_in == 0 && used_out == 0) rc = Z_BUF_ERROR;  // no progress
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END || out_left != 0)
      fail(kRead, "{}: zip record '{}': deflate data is corrupt or not {} bytes long", path_, name,
           e.size);
  }

  std::string path_;
  const Mapping& file_;
  std::unordered_map<std::string, ZipEntry> entries_;
  std::vector<std::string> names_;
};

// ---------------------------------------------------------------------------------------------
// Pickle: an interpreter for what torch.save emits (protocols 2 to 5). Values live in an arena and
// refer to each other by index, so that cycles and deep nesting cannot recurse or leak. Nothing is
// ever called: known torch/collections globals build data, every other one an inert Object.

enum class Kind : uint8_t {
  None,
  Bool,
  Int,
  Float,
  String,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,
  Storage,
  Tensor,
  Object
};

const char* kind_name(Kind k) {
  static const char* names[] = {"None",      "a bool",   "an int",   "a float", "a string",
                                "bytes",     "a tuple",  "a list",   "a dict",  "a global",
                                "a storage", "a tensor", "an object"};
  return names[static_cast<int>(k)];
}

struct Node {
  Kind kind = Kind::None;
  uint32_t ref = 0;  // text (String, Bytes, Global, Object), items (Tuple, List, Dict), or index
  int64_t num = 0;   // Bool, Int; Float as bits
};

struct StorageRef {
  std::string key;
  torch::ScalarType dtype;
  int64_t numel;
};

struct TensorRef {
  uint32_t storage;
  int64_t offset;
  std::vector<int64_t> sizes, strides;
};

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {{"FloatStorage", torch::kFloat},
                                         {"DoubleStorage", torch::kDouble},
                                         {"HalfStorage", torch::kHalf},
                                         {"BFloat16Storage", torch::kBFloat16},
                                         {"LongStorage", torch::kLong},
                                         {"IntStorage", torch::kInt},
                                         {"ShortStorage", torch::kShort},
                                         {"CharStorage", torch::kChar},
                                         {"ByteStorage", torch::kByte},
                                         {"BoolStorage", torch::kBool},
                                         {"UntypedStorage", torch::kByte},
                                         {"ComplexFloatStorage", torch::kComplexFloat},
                                         {"ComplexDoubleStorage", torch::kComplexDouble}};

class Unpickler {
 public:
  Unpickler(std::string where, const uint8_t* data, uint64_t size)
      : where_(std::move(where)), data_(data), size_(size) {}

  uint32_t run() {
    // One line per opcode: the switch reads as the table of what torch.save emits.
    // clang-format off
    while (true) {
      op_at_ = pos_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80: protocol(byte()); break;                             // PROTO
        case 0x95: take(8); break;                                      // FRAME: a read-ahead hint
        case '(': marks_.push_back(stack_.size()); break;               // MARK
        case '.': return pop();                                         // STOP
        case '0': pop(); break;                                         // POP
        case '1': pop_mark(); break;                                    // POP_MARK
        case '2': push(top()); break;                                   // DUP
        case 'N': push(make(Kind::None)); break;                        // NONE
        case 0x88: push(make(Kind::Bool, 0, 1)); break;                 // NEWTRUE
        case 0x89: push(make(Kind::Bool, 0, 0)); break;                 // NEWFALSE
        case 'K': push(make(Kind::Int, 0, byte())); break;              // BININT1
        case 'M': push(make(Kind::Int, 0, u16(take(2)))); break;        // BININT2
        case 'J': push(make(Kind::Int, 0, static_cast<int32_t>(u32(take(4))))); break;  // BININT
        case 0x8a: long_int(byte()); break;                             // LONG1
        case 0x8b: long_int(length4("LONG4")); break;                   // LONG4
        case 'G': push(make(Kind::Float, 0, big_endian64(take(8)))); break;  // BINFLOAT
        case 'X': push_text(Kind::String, u32(take(4))); break;         // BINUNICODE
        case 0x8c: push_text(Kind::String, byte()); break;              // SHORT_BINUNICODE
        case 0x8d: push_text(Kind::String, u64(take(8))); break;        // BINUNICODE8
        case 'T': push_text(Kind::String, length4("BINSTRING")); break; // BINSTRING (Python 2)
        case 'U': push_text(Kind::String, byte()); break;               // SHORT_BINSTRING
        case 'B': push_text(Kind::Bytes, u32(take(4))); break;          // BINBYTES
        case 'C': push_text(Kind::Bytes, byte()); break;                // SHORT_BINBYTES
        case 0x8e: push_text(Kind::Bytes, u64(take(8))); break;         // BINBYTES8
        case 0x96: push_text(Kind::Bytes, u64(take(8))); break;         // BYTEARRAY8
        case '}': push(container(Kind::Dict, {})); break;               // EMPTY_DICT
        case ']': push(container(Kind::List, {})); break;               // EMPTY_LIST
        case ')': push(container(Kind::Tuple, {})); break;              // EMPTY_TUPLE
        case 0x8f: push(object("builtins.set")); break;                 // EMPTY_SET
        case 'd': push(container(Kind::Dict, pairs(pop_mark()))); break;  // DICT (protocol 1)
        case 'l': push(container(Kind::List, pop_mark())); break;       // LIST (protocol 1)
        case 't': push(container(Kind::Tuple, pop_mark())); break;      // TUPLE
        case 0x85: tuple(1); break;                                     // TUPLE1
        case 0x86: tuple(2); break;                                     // TUPLE2
        case 0x87: tuple(3); break;                                     // TUPLE3
        case 0x91: pop_mark(); push(object("builtins.frozenset")); break;  // FROZENSET
        case 'a': { const uint32_t v = pop(); append(top(), {v}); break; }  // APPEND
        case 'e': { auto values = pop_mark(); append(top(), std::move(values)); break; }  // APPENDS
        case 0x90: pop_mark(); expect_object(top(), "ADDITEMS"); break; // ADDITEMS (to a set)
        case 's': { const uint32_t v = pop(), k = pop(); set_items(top(), {k, v}); break; }  // SETITEM
        case 'u': { auto kv = pairs(pop_mark()); set_items(top(), std::move(kv)); break; }  // SETITEMS
        case 'q': memo_put(byte()); break;                              // BINPUT
        case 'r': memo_put(u32(take(4))); break;                        // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;                       // MEMOIZE
        case 'h': memo_get(byte()); break;                              // BINGET
        case 'j': memo_get(u32(take(4))); break;                        // LONG_BINGET
        case 'c': { std::string m = line(); push(global(m + "." + line())); break; }  // GLOBAL
        case 0x93: stack_global(); break;                               // STACK_GLOBAL
        case 'R': { const uint32_t a = pop(), f = pop(); push(reduce(f, a)); break; }  // REDUCE
        case 0x81: { const uint32_t a = pop(), c = pop(); push(new_object(c, a)); break; }  // NEWOBJ
        case 0x92: { pop(); const uint32_t a = pop(), c = pop(); push(new_object(c, a)); break; }  // NEWOBJ_EX
        case 'b': pop(); top(); break;                                  // BUILD: state ignored
        case 'Q': push(persistent_load(pop())); break;                  // BINPERSID
        default:
          if (op != 0 && std::strchr("IFLSVPgpio", op))
            error("protocol-0 opcode '{}' is not supported (torch.save uses protocol 2)",
                  static_cast<char>(op));
          error("unsupported pickle opcode 0x{:02x}", op);
      }
    }
    // clang-format on
  }

  const Node& node(uint32_t id) const { return nodes_[id]; }
  const std::string& text(uint32_t id) const { return texts_[nodes_[id].ref]; }
  const std::vector<uint32_t>& items(uint32_t id) const { return items_[nodes_[id].ref]; }
  const StorageRef& storage(uint32_t index) const { return storages_[index]; }
  const TensorRef& tensor(uint32_t id) const { return tensors_[nodes_[id].ref]; }

 private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(kRead, "{}, byte {}: {}", where_, op_at_,
         fmt::format(format, std::forward<Args>(args)...));
  }

  void charge(uint64_t bytes) {
    used_ += bytes;
    if (used_ > kMaxPickleMemory)
      error("unpacking the pickle needs more than {} GiB: not a checkpoint",
            kMaxPickleMemory >> 30);
  }

  uint8_t byte() { return *take(1); }
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) error("pickle is truncated ({} bytes)", size_);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  std::string line() {
    const uint8_t* start = data_ + pos_;
    const void* nl = std::memchr(start, '\n', size_ - pos_);
    if (!nl) error("pickle is truncated inside a GLOBAL");
    const uint64_t n = static_cast<const uint8_t*>(nl) - start;
    take(n + 1);
    charge(n);
    return std::string(reinterpret_cast<const char*>(start), n);
  }

  uint32_t make(Kind kind, uint32_t ref = 0, int64_t num = 0) {
    if (nodes_.size() >= std::numeric_limits<uint32_t>::max()) error("too many objects");
    charge(sizeof(Node));
    nodes_.push_back({kind, ref, num});
    return static_cast<uint32_t>(nodes_.size() - 1);
  }
  uint32_t make_text(Kind kind, std::string s) {
    charge(sizeof(std::string) + s.size());
    texts_.push_back(std::move(s));
    return make(kind, static_cast<uint32_t>(texts_.size() - 1));
  }
  uint32_t container(Kind kind, std::vector<uint32_t> items) {
    charge(sizeof(items) + items.size() * sizeof(uint32_t));
    items_.push_back(std::move(items));
    return make(kind, static_cast<uint32_t>(items_.size() - 1));
  }
  uint32_t object(const std::string& cls) { return make_text(Kind::Object, cls); }
  uint32_t global(const std::string& name) { return make_text(Kind::Global, name); }
  void push_text(Kind kind, uint64_t n) {
    const uint8_t* p = take(n);
    push(make_text(kind, std::string(reinterpret_cast<const char*>(p), n)));
  }
  void long_int(uint64_t n) {
    const uint8_t* p = take(n);
    if (n > 8) {
      push(object("builtins.int"));  // beyond int64: kept opaque
      return;
    }
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    push(make(Kind::Int, 0, static_cast<int64_t>(v)));
  }

  void protocol(uint8_t v) {
    if (v < 2 || v > 5) error("pickle protocol {} (expected 2 to 5)", v);
  }
  uint64_t length4(const char* op) {
    const int32_t n = static_cast<int32_t>(u32(take(4)));
    if (n < 0) error("{} with negative length {}", op, n);
    return static_cast<uint64_t>(n);
  }
  static int64_t big_endian64(const uint8_t* p) {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
    return static_cast<int64_t>(bits);
  }
  std::vector<uint32_t> pairs(std::vector<uint32_t> items) {
    if (items.size() % 2) error("a dict from an odd number of items");
    return items;
  }
  void stack_global() {
    const uint32_t name = pop(), module = pop();
    if (nodes_[name].kind != Kind::String || nodes_[module].kind != Kind::String)
      error("STACK_GLOBAL expects two strings");
    push(global(texts_[nodes_[module].ref] + "." + texts_[nodes_[name].ref]));
  }

  void push(uint32_t id) {
    charge(sizeof(uint32_t));
    stack_.push_back(id);
  }
  uint32_t pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) error("pickle stack underflow");
    const uint32_t id = stack_.back();
    stack_.pop_back();
    return id;
  }
  uint32_t top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) error("pickle stack underflow");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) error("pickle has no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  void tuple(size_t n) {
    std::vector<uint32_t> items(n);
    for (size_t i = n; i-- > 0;) items[i] = pop();
    push(container(Kind::Tuple, std::move(items)));
  }

  void memo_put(uint64_t index) {
    if (index > std::numeric_limits<uint32_t>::max()) error("memo index {} too large", index);
    charge(64);
    memo_[static_cast<uint32_t>(index)] = top();
  }
  void memo_get(uint32_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) error("memo has no entry {}", index);
    push(it->second);
  }

  void expect_object(uint32_t id, const char* op) {
    if (nodes_[id].kind != Kind::Object) error("{} on {}", op, kind_name(nodes_[id].kind));
  }
  void append(uint32_t target, std::vector<uint32_t> values) {
    if (nodes_[target].kind == Kind::Object) return;  // a list subclass we do not model
    if (nodes_[target].kind != Kind::List) error("APPEND to {}", kind_name(nodes_[target].kind));
    charge(values.size() * sizeof(uint32_t));
    auto& list = items_[nodes_[target].ref];
    list.insert(list.end(), values.begin(), values.end());
  }
  void set_items(uint32_t target, std::vector<uint32_t> kv) {
    if (nodes_[target].kind == Kind::Object) return;  // __setitem__ of an object we do not model
    if (nodes_[target].kind != Kind::Dict) error("SETITEM on {}", kind_name(nodes_[target].kind));
    charge(kv.size() * sizeof(uint32_t));
    auto& dict = items_[nodes_[target].ref];
    dict.insert(dict.end(), kv.begin(), kv.end());
  }

  std::string callable_name(uint32_t id) const {
    return nodes_[id].kind == Kind::Global ? texts_[nodes_[id].ref] : "<call>";
  }
  const std::vector<uint32_t>& args_of(uint32_t args, const std::string& fn) const {
    if (nodes_[args].kind != Kind::Tuple)
      error("{} called with {} instead of an argument tuple", fn, kind_name(nodes_[args].kind));
    return items_[nodes_[args].ref];
  }
  int64_t int_arg(uint32_t id, const std::string& what) const {
    if (nodes_[id].kind != Kind::Int)
      error("{}: expected an int, got {}", what, kind_name(nodes_[id].kind));
    return nodes_[id].num;
  }
  std::vector<int64_t> ints_arg(uint32_t id, const std::string& what) const {
    if (nodes_[id].kind != Kind::Tuple && nodes_[id].kind != Kind::List)
      error("{}: expected a tuple of ints, got {}", what, kind_name(nodes_[id].kind));
    const auto& items = items_[nodes_[id].ref];
    if (items.size() > kMaxRank)
      error("{}: {} dimensions, at most {}", what, items.size(), kMaxRank);
    std::vector<int64_t> out;
    for (uint32_t item : items) {
      const int64_t v = int_arg(item, what);
      if (v < 0) error("{}: negative value {}", what, v);
      out.push_back(v);
    }
    return out;
  }

  uint32_t reduce(uint32_t callable, uint32_t args) {
    const std::string fn = callable_name(callable);
    if (fn == "collections.OrderedDict" || fn == "builtins.dict" || fn == "__builtin__.dict") {
      if (!args_of(args, fn).empty()) return object(fn);  // dict(pairs): not what torch writes
      return container(Kind::Dict, {});
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      const auto& a = args_of(args, fn);
      if (a.size() < 4) error("{} expects at least 4 arguments, got {}", fn, a.size());
      if (nodes_[a[0]].kind != Kind::Storage)
        error("{}: expected a storage, got {}", fn, kind_name(nodes_[a[0]].kind));
      TensorRef t{nodes_[a[0]].ref, int_arg(a[1], fn + " storage offset"),
                  ints_arg(a[2], fn + " size"), ints_arg(a[3], fn + " stride")};
      if (t.offset < 0) error("{}: negative storage offset {}", fn, t.offset);
      if (t.sizes.size() != t.strides.size())
        error("{}: size has {} dimensions, stride {}", fn, t.sizes.size(), t.strides.size());
      charge(sizeof(TensorRef) + 16 * t.sizes.size());
      tensors_.push_back(std::move(t));
      return make(Kind::Tensor, static_cast<uint32_t>(tensors_.size() - 1));
    }
    if (fn == "torch._utils._rebuild_parameter" ||
        fn == "torch._utils._rebuild_parameter_with_state") {
      const auto& a = args_of(args, fn);  // (data, requires_grad, backward_hooks[, state])
      if (a.empty() || nodes_[a[0]].kind != Kind::Tensor) error("{}: expected a tensor", fn);
      return a[0];
    }
    if (fn == "torch._tensor._rebuild_from_type_v2") {
      const auto& a = args_of(args, fn);  // (func, type, args, state): a tensor subclass
      if (a.size() < 3) error("{} expects 4 arguments, got {}", fn, a.size());
      if (callable_name(a[0]) == fn) return object(fn);  // no recursion on nested calls
      const uint32_t inner = reduce(a[0], a[2]);
      return nodes_[inner].kind == Kind::Tensor ? inner : object(fn);
    }
    return object(fn);
  }

  uint32_t new_object(uint32_t cls, uint32_t args) {
    const std::string name = callable_name(cls);
    if (name == "collections.OrderedDict") return container(Kind::Dict, {});
    return object(name);
  }

  // torch.save's persistent id of a storage: ('storage', torch.XStorage, key, location, numel).
  uint32_t persistent_load(uint32_t pid) {
    if (nodes_[pid].kind != Kind::Tuple)
      error("persistent id is {}, expected a tuple", kind_name(nodes_[pid].kind));
    const auto& a = items_[nodes_[pid].ref];
    if (a.size() != 5 || nodes_[a[0]].kind != Kind::String || texts_[nodes_[a[0]].ref] != "storage")
      error("unsupported persistent id (expected ('storage', type, key, location, numel))");
    if (nodes_[a[1]].kind != Kind::Global)
      error("storage type is {}", kind_name(nodes_[a[1]].kind));
    std::string type = texts_[nodes_[a[1]].ref];
    for (const char* prefix : {"torch.cuda.", "torch."})
      if (type.rfind(prefix, 0) == 0) {
        type = type.substr(std::strlen(prefix));
        break;
      }
    const StorageType* found = nullptr;
    for (const auto& st : kStorageTypes)
      if (type == st.name) found = &st;
    if (!found) error("unsupported storage type {}", texts_[nodes_[a[1]].ref]);
    if (nodes_[a[2]].kind != Kind::String) error("storage key is {}", kind_name(nodes_[a[2]].kind));
    const int64_t numel = int_arg(a[4], "storage size");
    if (numel < 0) error("storage size {} is negative", numel);
    charge(sizeof(StorageRef) + texts_[nodes_[a[2]].ref].size());
    storages_.push_back({texts_[nodes_[a[2]].ref], found->dtype, numel});
    return make(Kind::Storage, static_cast<uint32_t>(storages_.size() - 1));
  }

  std::string where_;
  const uint8_t* data_;
  uint64_t size_, pos_ = 0, op_at_ = 0, used_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::string> texts_;
  std::vector<std::vector<uint32_t>> items_;
  std::vector<StorageRef> storages_;
  std::vector<TensorRef> tensors_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
};

// ---------------------------------------------------------------------------------------------
// Tensors from storages.

class TensorBuilder {
 public:
  TensorBuilder(const std::string& path, const Mapping& file, const ZipArchive& zip,
                const std::string& prefix)
      : path_(path), file_(file), zip_(zip), prefix_(prefix) {}

  torch::Tensor build(const std::string& name, const TensorRef& t, const StorageRef& s) {
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
  torch::Tensor storage(const std::string& name, const StorageRef& s, int64_t elem) {
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
  const Mapping& file_;
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

[[noreturn]] void refuse_non_zip(const std::string& path, const Mapping& file) {
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
  const Mapping file = map_file(path);
  if (file.size < 4 || std::memcmp(file.data.get(), "PK", 2) != 0) refuse_non_zip(path, file);
  const ZipArchive zip(path, file);
  const std::string prefix = archive_prefix(path, zip);

  const std::string pickle_name = prefix + "/data.pkl";
  const ZipEntry& pe = *zip.find(pickle_name);
  if (pe.size > kMaxPickleBytes)
    fail(kRead, "{}: {} is {} bytes, more than the {} MiB limit", path, pickle_name, pe.size,
         kMaxPickleBytes >> 20);
  std::vector<uint8_t> pickle(pe.size);
  zip.extract(pickle_name, pe, pickle.data());
  Unpickler unpickler(path + ": " + pickle_name, pickle.data(), pickle.size());
  const uint32_t root = unpickler.run();

  if (unpickler.node(root).kind != Kind::Dict)
    fail(kRead, "{}: the checkpoint holds {}, expected a dict of tensors", path,
         kind_name(unpickler.node(root).kind));
  auto string_key = [&](uint32_t key) {
    return unpickler.node(key).kind == Kind::String ? &unpickler.text(key) : nullptr;
  };
  uint32_t dict = root;
  std::string what = "the top-level dict";
  const auto& top = unpickler.items(root);
  for (size_t i = 0; i + 1 < top.size(); i += 2) {
    const std::string* key = string_key(top[i]);
    if (key && *key == "state_dict" && unpickler.node(top[i + 1]).kind == Kind::Dict) {
      dict = top[i + 1];
      what = "its state_dict";
    }
  }

  TensorBuilder builder(path, file, zip, prefix);
  TensorMap tensors;
  const auto& entries = unpickler.items(dict);
  for (size_t i = 0; i + 1 < entries.size(); i += 2) {
    const std::string* key = string_key(entries[i]);
    const Node& value = unpickler.node(entries[i + 1]);
    if (!key) continue;
    if (value.kind == Kind::Object && unpickler.text(entries[i + 1]).rfind("torch._utils.", 0) == 0)
      fail(kRead, "{}: tensor '{}' is rebuilt by {}, which is not supported (only dense tensors)",
           path, *key, unpickler.text(entries[i + 1]));
    if (value.kind != Kind::Tensor) continue;
    const TensorRef& t = unpickler.tensor(entries[i + 1]);
    tensors.insert_or_assign(*key, builder.build(*key, t, unpickler.storage(t.storage)));
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
