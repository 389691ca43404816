#include "io/jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>  // after <cstdio>: it uses size_t and FILE without including them

#include "core/error.h"

namespace lf {

namespace {

constexpr const char* kWhere = "image::load";
// More scans than any encoder writes; a hostile progressive file can make each one cost a pass
// over every coefficient of the image (the limit and its reason are TurboJPEG's).
constexpr int kMaxScans = 500;

// libjpeg reports a fatal error by calling error_exit, which must not return: it longjmps back to
// the setjmp in run_libjpeg. Only libjpeg's C frames lie between the two, and run_libjpeg holds
// no object with a destructor, so the jump skips nothing.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_fatal_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Warnings (corrupt data, a premature end) and trace messages are neither printed nor fatal.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) ++cinfo->err->num_warnings;
}

void on_progress(j_common_ptr cinfo) {
  const auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > kMaxScans) {
    auto* errors = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(errors->message, sizeof(errors->message),
                  "a progressive JPEG with more than %d scans", kMaxScans);
    std::longjmp(errors->jump, 1);
  }
}

struct Frame {
  int width = 0, height = 0;
  J_COLOR_SPACE stored = JCS_UNKNOWN;
};

// One pass of libjpeg over the file. Without `out`, it reads the header into `frame`. With `out`,
// it decodes every row, converted to `space`, into out: frame.height rows of frame.width *
// components bytes, the frame an earlier header-only pass read, which this pass's output must
// match. Returns false with errors.message set when libjpeg stops on a fatal error.
bool run_libjpeg(std::string_view bytes, Frame& frame, J_COLOR_SPACE space, uint8_t* out,
                 ErrorManager& errors) {
  jpeg_decompress_struct dinfo;
  std::memset(&dinfo, 0, sizeof(dinfo));  // destroying it before create is then a no-op
  jpeg_progress_mgr progress;
  std::memset(&progress, 0, sizeof(progress));
  progress.progress_monitor = on_progress;
  dinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_fatal_error;
  errors.pub.emit_message = on_message;
  errors.message[0] = '\0';
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&dinfo);
    return false;
  }
  jpeg_create_decompress(&dinfo);
  dinfo.progress = &progress;
  jpeg_mem_src(&dinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&dinfo, TRUE);  // TRUE: a tables-only file is an error
  if (!out) {
    frame.width = static_cast<int>(dinfo.image_width);
    frame.height = static_cast<int>(dinfo.image_height);
    frame.stored = dinfo.jpeg_color_space;
  } else {
    dinfo.out_color_space = space;
    jpeg_start_decompress(&dinfo);  // a multi-scan file is read whole here
    // out was sized from `frame`: rows of any other size are not written.
    if (static_cast<int>(dinfo.output_width) != frame.width ||
        static_cast<int>(dinfo.output_height) != frame.height ||
        dinfo.jpeg_color_space != frame.stored) {
      std::snprintf(errors.message, sizeof(errors.message), "decoding gives %ux%u, header %dx%d",
                    dinfo.output_width, dinfo.output_height, frame.width, frame.height);
      jpeg_destroy_decompress(&dinfo);
      return false;
    }
    const size_t stride = static_cast<size_t>(frame.width) * dinfo.output_components;
    while (dinfo.output_scanline < dinfo.output_height) {
      JSAMPROW row = out + dinfo.output_scanline * stride;
      jpeg_read_scanlines(&dinfo, &row, 1);
    }
    // No jpeg_finish_decompress: every row is here, and what follows the last scan (trailing
    // bytes, a missing EOI) cannot change them.
  }
  jpeg_destroy_decompress(&dinfo);
  return true;
}

Frame read_frame(std::string_view bytes, const std::string& name) {
  ErrorManager errors;
  Frame frame;
  if (!run_libjpeg(bytes, frame, JCS_UNKNOWN, nullptr, errors))
    fail(kWhere, "{}: not a readable image ({})", name, errors.message);
  return frame;
}

bool is_cmyk(J_COLOR_SPACE space) {
  return space == JCS_CMYK || space == JCS_YCCK;
}

// stb's stbi__blinn_8x8: x * y / 255, rounded.
uint8_t blinn(unsigned x, unsigned y) {
  const unsigned t = x * y + 128;
  return static_cast<uint8_t>((t + (t >> 8)) >> 8);
}

// uint8 [H, W, 4] CMYK (Adobe's inverted values, as libjpeg returns them) -> [H, W, 1 or 3].
torch::Tensor from_cmyk(const torch::Tensor& cmyk, int64_t channels) {
  torch::Tensor out = torch::empty({cmyk.size(0), cmyk.size(1), channels}, torch::kUInt8);
  const uint8_t* in = cmyk.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t i = 0, n = cmyk.size(0) * cmyk.size(1); i < n; ++i, in += 4, o += channels) {
    const unsigned r = blinn(in[0], in[3]), g = blinn(in[1], in[3]), b = blinn(in[2], in[3]);
    if (channels == 3) {
      o[0] = static_cast<uint8_t>(r);
      o[1] = static_cast<uint8_t>(g);
      o[2] = static_cast<uint8_t>(b);
    } else {
      o[0] = static_cast<uint8_t>((r * 77 + g * 150 + b * 29) >> 8);  // stb's luma weights
    }
  }
  return out;
}

}  // namespace

JpegHeader read_jpeg_header(std::string_view bytes, const std::string& name) {
  const Frame frame = read_frame(bytes, name);
  return {frame.width, frame.height, frame.stored == JCS_GRAYSCALE ? 1 : 3};
}

torch::Tensor decode_jpeg(std::string_view bytes, const std::string& name, int64_t channels) {
  if (channels != 1 && channels != 3)
    fail(kWhere, "{}: a JPEG decodes to 1 or 3 channels, asked for {}", name, channels);
  Frame frame = read_frame(bytes, name);  // 1.2 us for a 256 px file, against ~7 ms to decode it
  // libjpeg converts YCbCr/RGB/gray to gray or RGB itself, CMYK/YCCK only to CMYK.
  const bool cmyk = is_cmyk(frame.stored);
  const J_COLOR_SPACE space = cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  torch::Tensor pixels =
      torch::empty({frame.height, frame.width, cmyk ? 4 : channels}, torch::kUInt8);
  ErrorManager errors;
  if (!run_libjpeg(bytes, frame, space, pixels.data_ptr<uint8_t>(), errors))
    fail(kWhere, "{}: cannot decode ({})", name, errors.message);
  return cmyk ? from_cmyk(pixels, channels) : pixels;
}

}  // namespace lf
