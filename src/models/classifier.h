// A small CNN image classifier: trained on the dataset's labels, its penultimate-layer features
// score generated samples (Frechet distance, see eval/frechet_distance.h) and its predictions check
// that class-conditional samples show the class they were asked for.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/trainable.h"

namespace lf {

struct ClassifierOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  // Inputs of any other size are resized (bilinear) to image_size x image_size first, so 32-px
  // samples score with a 28-px classifier.
  TORCH_ARG(int64_t, image_size) = 28;
  // One stage per entry: convs_per_stage conv3x3-BN-ReLU at that width, then a 2x2 max pool.
  TORCH_ARG(std::vector<int64_t>, widths) = std::vector<int64_t>{32, 64, 128};
  TORCH_ARG(int64_t, convs_per_stage) = 2;
  TORCH_ARG(int64_t, feature_dim) = 256;  // the features: Linear -> ReLU after the flattened map
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(double, dropout) = 0.3;  // between the features and the class logits
  // Training only: flip each image left-right with probability 1/2 (label-preserving for clothes,
  // not for digits or letters).
  TORCH_ARG(bool, random_flip) = false;
};
void to_json(Json& json, const ClassifierOptions& options);
void from_json(const Json& json, ClassifierOptions& options);  // present keys; unknown keys throw

// Presets: "fashion" (1x28x28, 10 classes, random flips; ~0.4 M parameters).
ClassifierOptions classifier_preset(const std::string& name);
std::vector<std::string> classifier_preset_names();

class ClassifierImpl : public TrainableImpl {
 public:
  explicit ClassifierImpl(ClassifierOptions options = {});

  std::string kind() const override { return "classifier"; }
  // Cross-entropy against batch.labels (every label in [0, num_classes)); logs loss_ce, accuracy.
  TrainOutput train_batch(const Batch& batch) override;
  Json options_json() const override;

  // x: [N, C, H, W] in [-1, 1] -> logits [N, num_classes]
  torch::Tensor forward(const torch::Tensor& x);
  // x: [N, C, H, W] in [-1, 1] -> penultimate features [N, feature_dim] (after the ReLU)
  torch::Tensor features(const torch::Tensor& x);
  // features: [N, feature_dim] -> logits [N, num_classes] (dropout in training mode)
  torch::Tensor classify(const torch::Tensor& features);

  const ClassifierOptions& options() const { return options_; }

  // "body.i": Conv2d / BatchNorm2d (ReLU and MaxPool2d hold no weights), "fc", "head".
  torch::nn::Sequential body{nullptr};
  torch::nn::Linear fc{nullptr};    // flattened map -> features
  torch::nn::Linear head{nullptr};  // features -> logits
  torch::nn::Dropout dropout{nullptr};

 private:
  // Checks [N, in_channels, H, W] and resizes to image_size; `where` names the caller.
  torch::Tensor prepare(const torch::Tensor& x, const char* where) const;

  ClassifierOptions options_;
};
TORCH_MODULE(Classifier);

}  // namespace lf
