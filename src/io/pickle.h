// A restricted interpreter for the pickles torch.save emits (protocols 2 to 5). Ours because
// nothing in Debian reads torch zip checkpoints safely: Python's pickle runs code from the file,
// and torch::jit::Unpickler has crashed on crafted files (pytorch#94815) and cannot skip
// Lightning's Python objects. Nothing is ever called: known torch/collections globals build dicts,
// lists and tensor references; every other object becomes an inert placeholder.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lf::pickle {

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

const char* kind_name(Kind k);  // "a dict", "an int", ... for error messages

// Values live in an arena and refer to each other by index, so that cycles and deep nesting
// cannot recurse or leak.
struct Node {
  Kind kind = Kind::None;
  uint32_t ref = 0;  // text (String, Bytes, Global, Object), items (Tuple, List, Dict), or index
  int64_t num = 0;   // Bool, Int; Float as bits
};

// A storage named by torch.save's persistent id; its bytes are the archive's record data/<key>.
struct StorageRef {
  std::string key;
  torch::ScalarType dtype;
  int64_t numel;
};

// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage. Offset, sizes and
// strides are non-negative, with as many sizes as strides (at most 64); bounds are not checked.
struct TensorRef {
  uint32_t storage;
  int64_t offset;
  std::vector<int64_t> sizes, strides;
};

// What a pickle unpacked to. root() and items() give value ids; text, items and tensor take the id
// of a value of their kind, storage a TensorRef::storage. A Dict's items alternate key and value.
class Graph {
 public:
  uint32_t root() const { return root_; }
  const Node& node(uint32_t id) const { return nodes_[id]; }
  const std::string& text(uint32_t id) const { return texts_[nodes_[id].ref]; }
  const std::vector<uint32_t>& items(uint32_t id) const { return items_[nodes_[id].ref]; }
  const StorageRef& storage(uint32_t index) const { return storages_[index]; }
  const TensorRef& tensor(uint32_t id) const { return tensors_[nodes_[id].ref]; }

 private:
  friend class Unpickler;  // builds it (pickle.cpp)
  uint32_t root_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::string> texts_;
  std::vector<std::vector<uint32_t>> items_;
  std::vector<StorageRef> storages_;
  std::vector<TensorRef> tensors_;
};

// Interprets the `size` bytes at `data`; fails rather than allocate more than 2 GiB. Errors are
// lf::Error tagged `where` (the caller's function): "<context>, byte <opcode offset>: <problem>".
Graph unpickle(const char* where, std::string context, const uint8_t* data, uint64_t size);

}  // namespace lf::pickle
