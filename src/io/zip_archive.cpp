// Zip: the central directory (with ZIP64), stored or deflated records, over a mapped file.
#include "io/zip_archive.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/little_endian.h"

namespace lf {
namespace {

using little_endian::u16;
using little_endian::u32;
using little_endian::u64;

// Deflate's best case is 258 bytes from 2 bits: no record unpacks to more than 1032x its size.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

MappedFile map_file(const char* where, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail(where, "{}: no such file", path);
    fail(where, "{}: cannot open: {}", path, std::strerror(errno));
  }
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd);
    if (!stat_ok) fail(where, "{}: cannot stat: {}", path, std::strerror(stat_errno));
    fail(where, "{}: not a regular file", path);
  }
  MappedFile m;
  m.size = static_cast<uint64_t>(st.st_size);
  if (m.size == 0) {
    ::close(fd);
    fail(where, "{}: file is empty", path);
  }
  // NORESERVE: a private writable mapping would otherwise be charged in full against the
  // overcommit limit, though only pages written through a tensor ever get copied.
  void* addr = ::mmap(nullptr, m.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (addr == MAP_FAILED) fail(where, "{}: cannot map: {}", path, std::strerror(map_errno));
  const uint64_t size = m.size;
  m.data = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(addr),
                                    [size](uint8_t* p) { ::munmap(p, size); });
  return m;
}

ZipArchive::ZipArchive(const char* where, const std::string& path, const MappedFile& file)
    : where_(where), path_(path), file_(file) {
  read_directory();
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

uint64_t ZipArchive::data_offset(const std::string& name, const ZipEntry& e) const {
  const uint8_t* base = file_.data.get();
  if (e.header > file_.size || file_.size - e.header < 30 || u32(base + e.header) != 0x04034b50)
    fail(where_, "{}: zip record '{}': no local header at offset {}", path_, name, e.header);
  const uint64_t begin = e.header + 30 + u16(base + e.header + 26) + u16(base + e.header + 28);
  if (begin > file_.size || file_.size - begin < e.compressed)
    fail(where_, "{}: zip record '{}': {} bytes at offset {} go beyond the {}-byte file", path_,
         name, e.compressed, begin, file_.size);
  return begin;
}

void ZipArchive::extract(const std::string& name, const ZipEntry& e, uint8_t* out) const {
  const uint8_t* src = file_.data.get() + data_offset(name, e);
  if (e.method == 0) {
    if (e.size) std::memcpy(out, src, e.size);
  } else {
    inflate_into(name, e, src, out);
  }
  check_crc(name, e, out);
}

void ZipArchive::check_crc(const std::string& name, const ZipEntry& e, const uint8_t* data) const {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  return;  // fuzz builds (fuzz/) skip the checksum so that mutations reach the parsers behind it
#endif
  const uint32_t crc = static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), data, e.size));
  if (crc != e.crc)
    fail(where_, "{}: zip record '{}' is corrupt (CRC-32 {:08x}, expected {:08x})", path_, name,
         crc, e.crc);
}

void ZipArchive::read_directory() {
  const uint8_t* base = file_.data.get();
  const uint64_t size = file_.size;
  // End of central directory: 22 bytes + a comment of up to 64 kB, at the end of the file.
  if (size < 22) fail(where_, "{}: file is {} bytes, too short for a zip archive", path_, size);
  uint64_t eocd = size - 22;
  const uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  while (true) {
    if (u32(base + eocd) == 0x06054b50 && 22 + uint64_t{u16(base + eocd + 20)} <= size - eocd)
      break;
    if (eocd == lowest) fail(where_, "{}: zip end of central directory not found", path_);
    --eocd;
  }
  if (u16(base + eocd + 4) != 0 || u16(base + eocd + 6) != 0)
    fail(where_, "{}: multi-volume zip archives are not supported", path_);
  uint64_t count = u16(base + eocd + 10), dir_size = u32(base + eocd + 12),
           dir_offset = u32(base + eocd + 16);
  if (eocd >= 20 && u32(base + eocd - 20) == 0x07064b50) {  // ZIP64 locator
    const uint64_t at = u64(base + eocd - 20 + 8);
    if (at > eocd - 20 || eocd - 20 - at < 56 || u32(base + at) != 0x06064b50)
      fail(where_, "{}: ZIP64 end of central directory not found at offset {}", path_, at);
    count = u64(base + at + 32);
    dir_size = u64(base + at + 40);
    dir_offset = u64(base + at + 48);
  }
  if (dir_offset > size || size - dir_offset < dir_size)
    fail(where_, "{}: zip central directory ({} bytes at offset {}) lies beyond the {}-byte file",
         path_, dir_size, dir_offset, size);
  if (count > dir_size / 46)
    fail(where_, "{}: zip central directory of {} bytes cannot hold {} entries", path_, dir_size,
         count);
  uint64_t at = dir_offset;
  const uint64_t end = dir_offset + dir_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - at < 46 || u32(base + at) != 0x02014b50)
      fail(where_, "{}: zip central directory entry {} is malformed", path_, i);
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
      fail(where_, "{}: zip central directory entry {} runs past the directory", path_, i);
    std::string name(reinterpret_cast<const char*>(h + 46), name_len);
    read_zip64_extra(name, h + 46 + name_len, extra_len, e);
    if (e.flags & 1) fail(where_, "{}: zip record '{}' is encrypted", path_, name);
    if (e.method != 0 && e.method != 8)
      fail(where_, "{}: zip record '{}' uses compression method {} (only stored and deflate)",
           path_, name, e.method);
    if (e.method == 0 && e.compressed != e.size)
      fail(where_, "{}: zip record '{}' is stored but claims {} bytes packed, {} unpacked", path_,
           name, e.compressed, e.size);
    // Sizes bound what callers allocate for a record: refuse claims the file cannot back.
    if (e.compressed > size)
      fail(where_, "{}: zip record '{}' claims {} packed bytes, more than the {}-byte file", path_,
           name, e.compressed, size);
    if (e.method == 8 && e.size > e.compressed * kMaxDeflateRatio + kMaxDeflateRatio)
      fail(where_,
           "{}: zip record '{}' claims {} bytes unpacked from {} packed; deflate expands at most "
           "{}:1, so the limit is {} bytes",
           path_, name, e.size, e.compressed, kMaxDeflateRatio,
           e.compressed * kMaxDeflateRatio + kMaxDeflateRatio);
    if (!entries_.emplace(name, e).second)
      fail(where_, "{}: zip archive has two records named '{}'", path_, name);
    names_.push_back(std::move(name));
    at += 46 + name_len + extra_len + comment_len;
  }
}

// ZIP64 extended information: 64-bit values for the fields that hold 0xFFFFFFFF.
void ZipArchive::read_zip64_extra(const std::string& name, const uint8_t* p, uint64_t n,
                                  ZipEntry& e) const {
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
        if (left < 8) fail(where_, "{}: zip record '{}': ZIP64 field is truncated", path_, name);
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
    fail(where_, "{}: zip record '{}' lacks its ZIP64 sizes", path_, name);
}

void ZipArchive::inflate_into(const std::string& name, const ZipEntry& e, const uint8_t* src,
                              uint8_t* out) const {
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
    fail(where_, "{}: zip record '{}': cannot start inflate", path_, name);
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
    fail(where_, "{}: zip record '{}': deflate data is corrupt or not {} bytes long", path_, name,
         e.size);
}

}  // namespace lf
