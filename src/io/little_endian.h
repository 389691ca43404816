// Unaligned little-endian integers from a byte buffer, for the binary formats we parse ourselves
// (zip archives, pickles). The host must be little-endian too: asserted here once.
#pragma once

#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the zip and pickle readers assume a little-endian host");

namespace lf::little_endian {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
inline uint16_t u16(const uint8_t* p) {
  return load<uint16_t>(p);
}
inline uint32_t u32(const uint8_t* p) {
  return load<uint32_t>(p);
}
inline uint64_t u64(const uint8_t* p) {
  return load<uint64_t>(p);
}

}  // namespace lf::little_endian
