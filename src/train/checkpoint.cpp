// Loading a saved model of any trainable type.
#include "train/checkpoint.h"

#include "train/trainable_types.h"

namespace lf {

LoadedTrainable load_trainable(const std::string& path, torch::Device device, bool use_ema) {
  return load_saved_model(path, device, use_ema, make_trainable);
}

}  // namespace lf
