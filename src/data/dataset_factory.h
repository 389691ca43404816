// Opens a dataset from a path: a folder of IDX files (MNIST / Fashion-MNIST) or a folder of images.
#pragma once

#include "data/dataset.h"
#include "io/config.h"

namespace lf {

struct DatasetSpec {
  std::string root;  // "" or "fashion-mnist" = Debian's Fashion-MNIST
  std::string split = "train";
  int64_t image_size = 0;  // 0: native size (IDX) / 64 (folders)
  int64_t channels = 0;    // folders: 0 -> 3
  int64_t limit = 0;       // 0: all
  std::string transform;   // "" | "edges" (the images' edge maps: sketches)

  // Reads {root, split, image_size, channels, limit, transform} from a config mapping (all
  // optional).
  static DatasetSpec from_config(const Config& data);
  Json to_json() const;
};

DatasetPtr open_dataset(const DatasetSpec& spec);

// The whole test split of the dataset `spec` names (its limit dropped); nullptr when the source
// has none (image folders).
DatasetPtr open_test_split(const DatasetSpec& spec);

}  // namespace lf
