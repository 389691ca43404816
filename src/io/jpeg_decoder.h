// JPEG decoding on libjpeg-turbo (Debian's libjpeg62-turbo, through libjpeg's own API). stb still
// writes JPEGs and decodes PNG and BMP, but its JPEG decoder in Debian's libstb (2022-09) predates
// upstream's bounds checks (nothings/stb#1289, stb_image 2.28): fuzz/fuzz_image found three
// hostile JPEGs that made it read or write past its Huffman arrays or abort on an assert.
// libjpeg-turbo is the decoder browsers use, fuzzed continuously upstream (OSS-Fuzz).
#pragma once

#include <torch/torch.h>

#include <string>
#include <string_view>

namespace lf {

struct JpegHeader {
  int64_t width = 0, height = 0;
  int64_t channels = 0;  // as stored: 1 gray, 3 colour (YCbCr, RGB, CMYK or YCCK)
};

// The frame header of an encoded JPEG; fails with "[image::load] NAME: not a readable image
// (REASON)", REASON in libjpeg's words, where libjpeg refuses it.
JpegHeader read_jpeg_header(std::string_view bytes, const std::string& name);

// Decodes an encoded JPEG to uint8 [H, W, channels], channels 1 or 3. Gray from a colour JPEG is
// its luma (Y); CMYK and YCCK (Adobe's inverted values) become RGB as stb made them:
// R = C * K / 255. Corrupt entropy-coded data (libjpeg's warnings) decodes with the damaged
// blocks filled in, as in a browser; a fatal error anywhere before the last row, or a progressive
// JPEG with more than 500 scans (the limit TurboJPEG applies), fails with a one-line error.
torch::Tensor decode_jpeg(std::string_view bytes, const std::string& name, int64_t channels);

}  // namespace lf
