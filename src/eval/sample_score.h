// Scores of generated images in the features of our Fashion-MNIST classifier (FID's Inception
// weights cannot be had here): Frechet distance to real test images and, for class-conditional
// samples, the classifier's accuracy on the classes they were asked to show. Also the classifier's
// own test report.
#pragma once

#include <torch/torch.h>

#include "data/dataset.h"
#include "io/config.h"
#include "models/classifier.h"

namespace lf {

struct ClassifierOutputs {
  torch::Tensor features;     // [N, feature_dim] float32, CPU
  torch::Tensor logits;       // [N, num_classes] float32, CPU
  torch::Tensor predictions;  // [N] int64, CPU: argmax of the logits
  torch::Tensor labels;       // [N] int64, CPU: the dataset's (-1 where none); images: undefined
};

// Runs the classifier in eval mode without gradients, batch by batch on `device` (where the model
// must be). images: [N, C, H, W] in [-1, 1], any H, W (resized to the classifier's size).
ClassifierOutputs classify_images(ClassifierImpl& model, const torch::Tensor& images,
                                  torch::Device device, int64_t batch_size = 256);
// The same over the first `limit` images of a dataset (0 = all), with its labels.
ClassifierOutputs classify_dataset(ClassifierImpl& model, const Dataset& data, torch::Device device,
                                   int64_t batch_size = 256, int64_t limit = 0);

struct ScoreOptions {
  int64_t batch_size = 256;
  int64_t real_limit = 0;    // first N real images; 0 = all
  bool real_halves = false;  // also report fd_real_halves, the noise floor
};

// samples: [N, C, H, W] in [-1, 1] (N >= 2); labels: [N] int64 classes the samples were asked to
// show, or undefined. -> {"n", "frechet_distance", "real_n", "predicted_classes" (counts),
// "accuracy" and "per_class_accuracy" (with labels), "fd_real_halves" (when asked)}.
Json score_samples(ClassifierImpl& model, const torch::Tensor& samples, const torch::Tensor& labels,
                   const Dataset& real, torch::Device device, const ScoreOptions& options = {});
// Only the real set: {"real_n", "fd_real_halves"}: FD between its even and odd images.
Json score_real_halves(ClassifierImpl& model, const Dataset& real, torch::Device device,
                       const ScoreOptions& options = {});
// FD between the even and odd rows of features [N, D] (N >= 4).
double real_halves_distance(const torch::Tensor& features);

// The classifier on a labelled test set: {"images", "accuracy", "loss_ce", "per_class_accuracy"
// [num_classes] (null where a class has no image), "class_names" (when the dataset has them),
// "processes" (in a data-parallel run)}. In a data-parallel run every process must call it: each
// classifies its share of the batches and all get the reduced report.
Json classifier_report(ClassifierImpl& model, const Dataset& test, torch::Device device,
                       int64_t batch_size = 256, int64_t limit = 0);

}  // namespace lf
