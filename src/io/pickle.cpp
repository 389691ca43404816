// Pickle: an interpreter for what torch.save emits (protocols 2 to 5). Values live in an arena and
// refer to each other by index, so that cycles and deep nesting cannot recurse or leak. Nothing is
// ever called: known torch/collections globals build data, every other one an inert Object.
#include "io/pickle.h"

#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "io/little_endian.h"

namespace lf::pickle {
namespace {

constexpr uint64_t kMaxPickleMemory = uint64_t{2} << 30;  // what unpacking it may allocate
constexpr size_t kMaxRank = 64;

using little_endian::u16;
using little_endian::u32;
using little_endian::u64;

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

}  // namespace

const char* kind_name(Kind k) {
  static const char* names[] = {"None",      "a bool",   "an int",   "a float", "a string",
                                "bytes",     "a tuple",  "a list",   "a dict",  "a global",
                                "a storage", "a tensor", "an object"};
  return names[static_cast<int>(k)];
}

// Outside the anonymous namespace: Graph names it as a friend.
class Unpickler {
 public:
  Unpickler(const char* where, std::string context, const uint8_t* data, uint64_t size)
      : where_(where), context_(std::move(context)), data_(data), size_(size) {}

  Graph run() {
    // One line per opcode: the switch reads as the table of what torch.save emits.
    // clang-format off
    while (true) {
      op_at_ = pos_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80: protocol(byte()); break;                             // PROTO
        case 0x95: take(8); break;                                      // FRAME: a read-ahead hint
        case '(': marks_.push_back(stack_.size()); break;               // MARK
        case '.': return graph(pop());                                  // STOP
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

 private:
  // The arena, moved out once STOP has popped the root.
  Graph graph(uint32_t root) {
    Graph g;
    g.root_ = root;
    g.nodes_ = std::move(nodes_);
    g.texts_ = std::move(texts_);
    g.items_ = std::move(items_);
    g.storages_ = std::move(storages_);
    g.tensors_ = std::move(tensors_);
    return g;
  }

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(where_, "{}, byte {}: {}", context_, op_at_,
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
    if (n > size_ - pos_)  // also refuses huge lengths before anything is allocated for them
      error("pickle is truncated: {} bytes needed, {} of its {} bytes left", n, size_ - pos_,
            size_);
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

  const char* where_;
  std::string context_;
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

Graph unpickle(const char* where, std::string context, const uint8_t* data, uint64_t size) {
  return Unpickler(where, std::move(context), data, size).run();
}

}  // namespace lf::pickle
