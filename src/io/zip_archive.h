// A hardened zip reader (stored or deflated records, ZIP64) over a mapped file, for torch.save
// checkpoints. Ours because nothing in Debian reads torch zip checkpoints safely: LibTorch's
// PyTorchStreamReader (miniz) has crashed on crafted files (pytorch#74798). Every offset and size
// is checked against the file; a record's CRC-32 is checked when it is extracted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace lf {

// The whole file, mapped private and writable: pages written through a tensor are copied.
struct MappedFile {
  std::shared_ptr<uint8_t> data;  // unmapped with the last copy
  uint64_t size = 0;
};

// Maps `path`; throws lf::Error tagged `where` naming the file if it is missing, not a regular
// file, empty or cannot be mapped.
MappedFile map_file(const char* where, const std::string& path);

// One central directory entry, with its ZIP64 values.
struct ZipEntry {
  uint16_t flags = 0, method = 0;  // method: 0 stored, 8 deflated (the only ones accepted)
  uint32_t crc = 0;
  uint64_t compressed = 0, size = 0, header = 0;  // packed and unpacked bytes, local header offset
};

// The central directory is read and validated on construction. Errors are lf::Error tagged `where`
// (the caller's function) and name `path` and the record.
class ZipArchive {
 public:
  ZipArchive(const char* where, const std::string& path, const MappedFile& file);

  const std::vector<std::string>& names() const { return names_; }  // in directory order
  const ZipEntry* find(const std::string& name) const;              // nullptr when absent
  // Offset of a record's first (packed) byte in the file, validated to lie within the file.
  uint64_t data_offset(const std::string& name, const ZipEntry& e) const;
  // The record's bytes into `out` (out_size == e.size), inflating if needed; CRC checked.
  void extract(const std::string& name, const ZipEntry& e, uint8_t* out) const;

 private:
  void read_directory();
  void read_zip64_extra(const std::string& name, const uint8_t* p, uint64_t n, ZipEntry& e) const;
  void inflate_into(const std::string& name, const ZipEntry& e, const uint8_t* src,
                    uint8_t* out) const;
  void check_crc(const std::string& name, const ZipEntry& e, const uint8_t* data) const;

  const char* where_;
  std::string path_;
  MappedFile file_;
  std::unordered_map<std::string, ZipEntry> entries_;
  std::vector<std::string> names_;
};

}  // namespace lf
