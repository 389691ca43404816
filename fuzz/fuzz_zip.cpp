// libFuzzer target: the zip reader behind .ckpt files (central directory, ZIP64, inflate).
#include <vector>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/zip_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lf::fuzz::write_input(data, size, ".zip");
  try {
    const lf::MappedFile file = lf::map_file("fuzz_zip", path);
    const lf::ZipArchive zip("fuzz_zip", path, file);
    for (const std::string& name : zip.names()) {
      const lf::ZipEntry* e = zip.find(name);
      std::vector<uint8_t> out(e->size);  // the reader bounds sizes by what the file can hold
      try {
        zip.extract(name, *e, out.data());
      } catch (const lf::Error&) {
      }
    }
  } catch (const lf::Error&) {
  }
  return 0;
}
