// Test helpers for torch.save archives: a stored-zip writer, a reader of the (well-formed)
// fixtures' records, and a builder of pickle opcodes, so that tests can make hostile checkpoints
// whose CRCs are right and reach the pickle interpreter.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace lf::test {

using Records = std::vector<std::pair<std::string, std::string>>;  // name, bytes (in order)

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A new file each time: truncating one that was just written makes ext4 flush it first (slow).
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string le(uint64_t v, int n) {
  std::string s(n, '\0');
  for (int i = 0; i < n; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

inline uint64_t get_le(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

// Raw deflate of `data` (zip method 8).
inline std::string deflate_raw(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(&out[0]);
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A zip archive of stored (or, with `deflated`, compressed) records; torch.save stores them and
// pads them to 64 bytes, which this writer does not. With `zip64`, sizes and offsets go in ZIP64
// extra fields and records (as for checkpoints over 4 GB).
inline std::string make_zip(const Records& records, bool deflated = false, bool zip64 = false) {
  std::string out, dir;
  const uint64_t far = 0xFFFFFFFF;
  for (const auto& [name, data] : records) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const std::string packed = deflated ? deflate_raw(data) : data;
    const uint64_t method = deflated ? 8 : 0, offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(crc, 4) +
           le(packed.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name +
           packed;
    const std::string extra =
        zip64 ? le(1, 2) + le(24, 2) + le(data.size(), 8) + le(packed.size(), 8) + le(offset, 8)
              : "";
    dir += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(method, 2) + le(0, 4) +
           le(crc, 4) + le(zip64 ? far : packed.size(), 4) + le(zip64 ? far : data.size(), 4) +
           le(name.size(), 2) + le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
           le(zip64 ? far : offset, 4) + name + extra;
  }
  const uint64_t dir_offset = out.size();
  out += dir;
  if (zip64) {
    const uint64_t record = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) +
           le(records.size(), 8) + le(records.size(), 8) + le(dir.size(), 8) + le(dir_offset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(record, 8) + le(1, 4);
  }
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(zip64 ? 0xFFFF : records.size(), 2) +
         le(zip64 ? 0xFFFF : records.size(), 2) + le(zip64 ? far : dir.size(), 4) +
         le(zip64 ? far : dir_offset, 4) + le(0, 2);
  return out;
}

// The records of a well-formed zip without a comment (the fixtures), in directory order.
inline Records read_zip(const std::string& zip) {
  const size_t eocd = zip.size() - 22;
  size_t at = get_le(zip, eocd + 16, 4);
  const size_t count = get_le(zip, eocd + 10, 2);
  Records records;
  for (size_t i = 0; i < count; ++i) {
    const size_t size = get_le(zip, at + 20, 4), name_len = get_le(zip, at + 28, 2),
                 extra_len = get_le(zip, at + 30, 2), comment_len = get_le(zip, at + 32, 2),
                 local = get_le(zip, at + 42, 4);
    const std::string name = zip.substr(at + 46, name_len);
    const size_t data = local + 30 + get_le(zip, local + 26, 2) + get_le(zip, local + 28, 2);
    records.emplace_back(name, zip.substr(data, size));
    at += 46 + name_len + extra_len + comment_len;
  }
  return records;
}

// Pickle opcodes, protocol 2 (as torch.save writes them).
struct Pickle {
  std::string s = "\x80\x02";
  Pickle& op(char c) {
    s += c;
    return *this;
  }
  Pickle& raw(const std::string& bytes) {
    s += bytes;
    return *this;
  }
  Pickle& str(const std::string& text) { return op('X').raw(le(text.size(), 4) + text); }
  Pickle& integer(int32_t v) { return op('J').raw(le(static_cast<uint32_t>(v), 4)); }
  Pickle& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& int64(int64_t v) {  // BININT, or LONG1 beyond 32 bits
    if (v >= INT32_MIN && v <= INT32_MAX) return integer(static_cast<int32_t>(v));
    return op('\x8a').raw(std::string(1, '\x08') + le(static_cast<uint64_t>(v), 8));
  }
  Pickle& ints(const std::vector<int64_t>& values) {  // a tuple
    mark();
    for (int64_t v : values) int64(v);
    return tuple();
  }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False,
  // OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", type).str(key).str("cpu").int64(numel).tuple().op('Q');
    int64(offset).ints(size).ints(stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return tuple().op('R');
  }
  std::string stop() const { return s + "."; }
};

}  // namespace lf::test
