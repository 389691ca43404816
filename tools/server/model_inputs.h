// What the server's jobs read: images named by a request (a test image by index, or an upload)
// turned into a model's input, the test split of a run's dataset, and error messages cleaned of the
// model folder's location.
#pragma once

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "io/config.h"
#include "server/served_models.h"

namespace lf::serve {

// An image a request names: {"test_index": i} or {"upload": "<base64 PNG/JPEG/BMP>"}.
struct ImageSource {
  int64_t test_index = -1;
  std::string upload;  // the decoded bytes; checked with probe_image
};

struct UploadLimits {
  double max_megapixels = 16;
  int64_t max_side = 1024;  // uploads for models of no fixed size are shrunk to this
};

// Reads an ImageSource from a request's JSON (`what` names it in errors). An upload's header is
// checked against the limits before anything else: lf::Error (400), or UploadTooLarge (413).
ImageSource parse_image_source(const Json& spec, const std::string& what,
                               const UploadLimits& limits);
struct UploadTooLarge : Error {
  using Error::Error;
};
// Checks an upload's header against the limits (UploadTooLarge above max_megapixels).
void check_upload(const std::string& bytes, const std::string& what, const UploadLimits& limits);

// The test split of the dataset a run was trained on (its config's data section with split=test;
// the training split for image folders, which have none); nullptr without a data section.
std::shared_ptr<const Dataset> open_test_split(const Config& run_config);

// [C, H, W] image -> the model's input: its training size (centre crop and resize) for runs, else
// the image shrunk to max_side and cropped to a multiple of the downsampling factor.
torch::Tensor to_model_input(torch::Tensor image, const Config& run_config, int64_t max_side);

// The image an ImageSource names, as the model's input [C, H, W]; `test` is the run's test split.
torch::Tensor load_image_source(const ImageSource& source, const Config& run_config,
                                const Dataset* test, int64_t max_side, const std::string& what);

// The browser is told a model's folder name, not where it lives.
std::string without_path(std::string message, const ServedModel& model);

// Runs `work`; any error but JobCancelled is rethrown as lf::Error with the model's folder path
// replaced by its name (and c10 errors without their backtrace).
template <typename F>
auto with_clean_errors(const ServedModel& model, const char* what, F&& work) -> decltype(work());

}  // namespace lf::serve

#include "server/model_inputs_inl.h"
