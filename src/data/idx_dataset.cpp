// IDX parsing from gzip streams with bounded, validated reads.
#include "data/idx_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace lf {

namespace {

class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail("idx::read", "{}: no such file", path);
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) fail("idx::read", "{}: cannot open", path);
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  // Reads up to `size` bytes; returns how many were read. A corrupt stream throws.
  size_t read(void* out, size_t size) {
    size_t total = 0;
    auto* dst = static_cast<uint8_t*>(out);
    while (total < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - total, 1 << 20));
      const int n = gzread(file_, dst + total, chunk);
      if (n < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        fail("idx::read", "{}: corrupt gzip stream: {}", path_,
             message ? message : "unknown error");
      }
      if (n == 0) break;
      total += static_cast<size_t>(n);
    }
    return total;
  }
  uint32_t read_u32_be(const char* what) {
    uint8_t b[4];
    if (read(b, 4) != 4) fail("idx::read", "{}: truncated while reading the {}", path_, what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
  }
  // Reads exactly `size` bytes into a tensor, in chunks that double from 64 kB up to 8 MB, so
  // that a header claiming more data than the file holds costs about what the file holds.
  torch::Tensor read_exact(int64_t size, const std::vector<int64_t>& shape) {
    std::vector<uint8_t> data;
    while (static_cast<int64_t>(data.size()) < size) {
      const size_t chunk = std::clamp<size_t>(data.size(), 64 << 10, 8 << 20);
      const size_t want = std::min<size_t>(chunk, static_cast<size_t>(size) - data.size());
      const size_t old = data.size();
      data.resize(old + want);
      const size_t got = read(data.data() + old, want);
      if (got < want)
        fail("idx::read", "{}: truncated: header promises {} bytes of data, file has {}", path_,
             size, old + got);
    }
    uint8_t extra;
    if (read(&extra, 1) != 0)
      fail("idx::read", "{}: trailing data after the {} bytes the header promises", path_, size);
    return torch::from_blob(data.data(), shape, torch::kUInt8).clone();
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

constexpr uint32_t kMaxCount = 1u << 24;  // images or labels in one file (Fashion-MNIST: 60000)
constexpr uint32_t kMaxSide = 4096;       // rows and columns of one image

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  GzReader reader(path);
  const uint32_t magic = reader.read_u32_be("magic number");
  if (magic != 0x00000803)
    fail("idx::read", "{}: magic {:#010x}: expected 0x00000803 (uint8 images, 3 dims)", path,
         magic);
  const uint32_t n = reader.read_u32_be("image count");
  const uint32_t rows = reader.read_u32_be("row count");
  const uint32_t cols = reader.read_u32_be("column count");
  if (n > kMaxCount)
    fail("idx::read", "{}: header claims {} images, more than the limit of {}", path, n, kMaxCount);
  if (rows == 0 || cols == 0 || rows > kMaxSide || cols > kMaxSide)
    fail("idx::read", "{}: header claims images of {}x{}, expected 1 to {} rows and columns", path,
         rows, cols, kMaxSide);
  return reader.read_exact(int64_t(n) * rows * cols, {int64_t(n), int64_t(rows), int64_t(cols)});
}

torch::Tensor read_idx_labels(const std::string& path) {
  GzReader reader(path);
  const uint32_t magic = reader.read_u32_be("magic number");
  if (magic != 0x00000801)
    fail("idx::read", "{}: magic {:#010x}: expected 0x00000801 (uint8 labels, 1 dim)", path, magic);
  const uint32_t n = reader.read_u32_be("label count");
  if (n > kMaxCount)
    fail("idx::read", "{}: header claims {} labels, more than the limit of {}", path, n, kMaxCount);
  return reader.read_exact(n, {int64_t(n)}).to(torch::kInt64);
}

namespace {
std::string find_idx_file(const std::string& root, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    const std::string path = root + "/" + stem + suffix;
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
  }
  fail("idx::open", "{}: no {}[.gz] (expected MNIST-style IDX files; Fashion-MNIST is in {})", root,
       stem, kFashionMnistDir);
}
}  // namespace

IdxDataset::IdxDataset(IdxDatasetOptions options) {
  if (options.split != "train" && options.split != "test")
    fail("idx::open", "split '{}': expected train or test", options.split);
  const std::string prefix = options.split == "train" ? "train" : "t10k";
  const auto image_path = find_idx_file(options.root, prefix + "-images-idx3-ubyte");
  const auto label_path = find_idx_file(options.root, prefix + "-labels-idx1-ubyte");
  images_ = read_idx_images(image_path).unsqueeze(1);
  labels_ = read_idx_labels(label_path);
  if (images_.size(0) != labels_.size(0))
    fail("idx::open", "{}: {} images but {} labels in {}", image_path, images_.size(0),
         labels_.size(0), label_path);
  if (labels_.numel() > 0 && labels_.max().item<int64_t>() > 9)
    fail("idx::open", "{}: label {} out of range [0, 10)", label_path,
         labels_.max().item<int64_t>());
  if (options.limit > 0 && options.limit < images_.size(0)) {
    images_ = images_.narrow(0, 0, options.limit).clone();
    labels_ = labels_.narrow(0, 0, options.limit).clone();
  }
  if (options.image_size > 0 && options.image_size != images_.size(2)) {
    // Resized in chunks into the uint8 result: the whole split in float32 at once took ~1 GB of
    // temporaries for 60000 images at 32x32, which the allocator then keeps (core/allocator.h).
    const int64_t n = images_.size(0), size = options.image_size;
    auto resized = torch::empty({n, images_.size(1), size, size}, torch::kUInt8);
    constexpr int64_t kChunk = 1024;
    for (int64_t begin = 0; begin < n; begin += kChunk) {
      const int64_t count = std::min(kChunk, n - begin);
      resized.narrow(0, begin, count)
          .copy_(torch::nn::functional::interpolate(
                     images_.narrow(0, begin, count).to(torch::kFloat32),
                     torch::nn::functional::InterpolateFuncOptions()
                         .size(std::vector<int64_t>{size, size})
                         .mode(torch::kBilinear)
                         .align_corners(false))
                     .round_()
                     .clamp_(0, 255));
    }
    images_ = resized;
  }
  fashion_ = options.root.find("fashion") != std::string::npos;
  name_ = fmt::format("{} ({} split, {} images {}x{})", options.root, options.split,
                      images_.size(0), images_.size(2), images_.size(3));
}

IdxDataset::IdxDataset(torch::Tensor images_u8, torch::Tensor labels, std::string name)
    : images_(std::move(images_u8)), labels_(std::move(labels)), name_(std::move(name)) {
  if (images_.dim() != 4 || images_.scalar_type() != torch::kUInt8)
    fail("IdxDataset", "expected uint8 images [N,C,H,W], got {} {}", shape_str(images_.sizes()),
         c10::toString(images_.scalar_type()));
}

std::vector<int64_t> IdxDataset::image_shape() const {
  return {images_.size(1), images_.size(2), images_.size(3)};
}

torch::Tensor IdxDataset::get_image(int64_t index) const {
  check_index(index, "IdxDataset::get_image");
  return images_[index].to(torch::kFloat32).div(127.5).sub(1.0);
}

int64_t IdxDataset::get_label(int64_t index) const {
  check_index(index, "IdxDataset::get_label");
  return labels_.defined() && labels_.numel() > 0 ? labels_[index].item<int64_t>() : -1;
}

Batch IdxDataset::get_batch(const std::vector<int64_t>& indices) const {
  for (auto i : indices) check_index(i, "IdxDataset::get_batch");
  auto index = torch::tensor(indices, torch::kInt64);
  auto images = images_.index_select(0, index).to(torch::kFloat32).div_(127.5).sub_(1.0);
  auto labels = labels_.numel() > 0 ? labels_.index_select(0, index)
                                    : torch::full({index.size(0)}, -1, torch::kInt64);
  Batch batch;
  batch.images = images;
  batch.labels = labels;
  batch.indices = index;
  return batch;
}

std::vector<std::string> IdxDataset::class_names() const {
  if (fashion_)
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

}  // namespace lf
