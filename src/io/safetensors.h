// safetensors reading (mmap, full header validation) and writing (same layout as Python's library).
// Written here because Debian ships no C++ safetensors library.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lf {

// One header entry; begin/end are byte offsets into the data buffer that follows the header.
struct TensorInfo {
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// Maps the file read-only and validates the whole header on open, so that get() cannot fail on
// a well-formed reader. Copies share the mapping.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);  // throws lf::Error naming the file

  std::vector<std::string> keys() const;  // in file order of offsets
  bool contains(const std::string& key) const;
  const TensorInfo& info(const std::string& key) const;  // throws naming the key if missing
  torch::Tensor get(const std::string& key) const;       // an owning CPU tensor (copied out)
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const uint8_t> map_;  // whole file; unmapped with the last copy
  uint64_t data_start_ = 0;             // 8 + header length
  std::map<std::string, TensorInfo> infos_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a file; the "__metadata__" strings go to *metadata when given.
std::map<std::string, torch::Tensor> load_safetensors(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// Tensors are moved to CPU and made contiguous one at a time; layout as Python's safetensors
// (sorted by dtype alignment descending, then name; header padded to 8 bytes). Written through
// AtomicFile, so a failure leaves no partial file. Throws lf::Error on unsupported dtypes.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace lf
