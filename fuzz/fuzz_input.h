// Helpers shared by the fuzz targets: the parsers read paths, so each input goes to a file first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lf::fuzz {

// Writes the input to a per-process file in /dev/shm (else $TMPDIR or /tmp) ending in `suffix`
// and returns its path; the next call with the same suffix overwrites it.
std::string write_input(const uint8_t* data, size_t size, const std::string& suffix);

// gzip-compresses data (what a .gz IDX file holds).
std::string gzip(const uint8_t* data, size_t size);

}  // namespace lf::fuzz
