// Gated PixelCNN prior: options, the gated layer with its causal paddings, logits and sampling.
#include "priors/pixelcnn.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "models/ae.h"  // OptionReader

namespace lf {

namespace F = torch::nn::functional;

void to_json(Json& json, const PixelCNNOptions& o) {
  json = Json{{"num_codes", o.num_codes()},     {"grid", o.grid()},
              {"hidden", o.hidden()},           {"num_layers", o.num_layers()},
              {"kernel_size", o.kernel_size()}, {"num_classes", o.num_classes()},
              {"head_hidden", o.head_hidden()}, {"dropout", o.dropout()}};
}

void from_json(const Json& json, PixelCNNOptions& o) {
  OptionReader read(json, "pixelcnn options");
  read("num_codes", o.num_codes())("grid", o.grid())("hidden", o.hidden());
  read("num_layers", o.num_layers())("kernel_size", o.kernel_size());
  read("num_classes", o.num_classes())("head_hidden", o.head_hidden())("dropout", o.dropout());
  read.finish();
}

PixelCNNOptions pixelcnn_preset(const std::string& name) {
  // 64 channels and 5x5 kernels (the reach covers 7x7 maps from the 3rd layer on): a training
  // step costs ~1.7x the gpt preset's. 128 channels cost ~6x (3.5x with 3x3 kernels).
  if (name == "fashion") return PixelCNNOptions().hidden(64).kernel_size(5);
  fail("pixelcnn_preset", "unknown preset '{}' (known: {})", name,
       fmt::join(pixelcnn_preset_names(), ", "));
}

std::vector<std::string> pixelcnn_preset_names() {
  return {"fashion"};
}

// ---- gated layer --------------------------------------------------------------------------------

namespace {

// [N, 2C, h, w] -> tanh(first half) * sigmoid(second half): [N, C, h, w].
torch::Tensor gate(const torch::Tensor& x) {
  const auto halves = x.chunk(2, 1);
  return torch::tanh(halves[0]) * torch::sigmoid(halves[1]);
}

}  // namespace

GatedMaskedConvImpl::GatedMaskedConvImpl(int64_t hidden, int64_t kernel_size, bool type_a,
                                         int64_t num_classes, double dropout)
    : half_(kernel_size / 2), type_a_(type_a), dropout_(dropout) {
  using torch::nn::Conv2dOptions;
  // No padding here: forward pads only above and to the left, so no cell sees below or right.
  vert_stack = register_module(
      "vert_stack", torch::nn::Conv2d(Conv2dOptions(hidden, 2 * hidden, {half_ + 1, kernel_size})));
  vert_to_horiz =
      register_module("vert_to_horiz", torch::nn::Conv2d(Conv2dOptions(2 * hidden, 2 * hidden, 1)));
  horiz_stack = register_module(
      "horiz_stack", torch::nn::Conv2d(Conv2dOptions(hidden, 2 * hidden, {1, half_ + 1})));
  horiz_resid = register_module("horiz_resid", torch::nn::Conv2d(Conv2dOptions(hidden, hidden, 1)));
  if (num_classes > 0)
    class_cond_embedding =
        register_module("class_cond_embedding", torch::nn::Embedding(num_classes, 2 * hidden));
  if (type_a_) {  // type A never reads the kernel's last column (the current cell): keep it zero
    torch::NoGradGuard no_grad;
    horiz_stack->weight.select(3, half_).zero_();
  }
}

std::tuple<torch::Tensor, torch::Tensor> GatedMaskedConvImpl::forward(const torch::Tensor& x_v,
                                                                      const torch::Tensor& x_h,
                                                                      const torch::Tensor& labels) {
  const int64_t h = x_v.size(2), w = x_v.size(3);
  // Row i reads rows i - k/2 .. i, columns j - k/2 .. j + k/2: [N, 2C, h, w].
  auto pre_v = vert_stack(F::pad(x_v, F::PadFuncOptions({half_, half_, half_, 0})));
  // Shifted one row down before it reaches the horizontal stack: row i gets rows < i only.
  const auto v_down = F::pad(pre_v, F::PadFuncOptions({0, 0, 1, 0})).slice(2, 0, h);
  // Column j reads columns j - k/2 .. j of its row (type A: .. j - 1): [N, 2C, h, w].
  torch::Tensor h_horiz;
  if (type_a_) {
    const auto x = F::pad(x_h, F::PadFuncOptions({half_, 0, 0, 0})).slice(3, 0, w + half_ - 1);
    h_horiz = torch::conv2d(x, horiz_stack->weight.slice(3, 0, half_), horiz_stack->bias);
  } else {
    h_horiz = horiz_stack(F::pad(x_h, F::PadFuncOptions({half_, 0, 0, 0})));
  }
  auto pre_h = h_horiz + vert_to_horiz(v_down);
  if (class_cond_embedding) {
    const auto c = class_cond_embedding(labels).unsqueeze(2).unsqueeze(3);  // [N, 2C, 1, 1]
    pre_v = pre_v + c;
    pre_h = pre_h + c;
  }
  const auto gated_h =
      F::dropout(gate(pre_h), F::DropoutFuncOptions().p(dropout_).training(is_training()));
  auto out_h = horiz_resid(gated_h);
  if (!type_a_) out_h = out_h + x_h;  // the first layer's input is the current cell: no residual
  return {gate(pre_v), out_h};
}

// ---- PixelCNN -----------------------------------------------------------------------------------

PixelCNNImpl::PixelCNNImpl(PixelCNNOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.num_codes() <= 0 || o.grid().size() != 2 || o.grid()[0] <= 0 || o.grid()[1] <= 0 ||
      o.num_classes() < 0)
    fail("pixelcnn", "expected num_codes > 0, grid [h, w] > 0, num_classes >= 0, got {}, {}, {}",
         o.num_codes(), o.grid(), o.num_classes());
  if (o.hidden() <= 0 || o.num_layers() <= 0 || o.head_hidden() <= 0)
    fail("pixelcnn", "expected hidden, num_layers, head_hidden > 0, got {}, {}, {}", o.hidden(),
         o.num_layers(), o.head_hidden());
  if (o.kernel_size() < 3 || o.kernel_size() % 2 == 0)
    fail("pixelcnn", "kernel_size: expected odd >= 3, got {}", o.kernel_size());
  if (o.dropout() < 0 || o.dropout() >= 1)
    fail("pixelcnn", "dropout: expected in [0, 1), got {}", o.dropout());

  embedding = register_module("embedding", torch::nn::Embedding(o.num_codes(), o.hidden()));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers(); ++i)
    layers->push_back(
        GatedMaskedConv(o.hidden(), o.kernel_size(), i == 0, o.num_classes(), o.dropout()));
  output_conv = register_module(
      "output_conv",
      torch::nn::Sequential(torch::nn::Conv2d(o.hidden(), o.head_hidden(), 1), torch::nn::ReLU(),
                            torch::nn::Conv2d(o.head_hidden(), o.num_codes(), 1)));
}

Json PixelCNNImpl::options_json() const {
  return options_;
}

torch::Tensor PixelCNNImpl::forward(const torch::Tensor& codes, const torch::Tensor& labels) {
  const auto device = embedding->weight.device();
  // Both stacks start from the embedded codes: [N, h, w] -> [N, C, h, w].
  auto x_v = embedding(codes.to(device)).permute({0, 3, 1, 2});
  auto x_h = x_v;
  const auto classes = options_.num_classes() > 0 ? labels.to(device) : torch::Tensor();
  for (size_t i = 0; i < layers->size(); ++i)
    std::tie(x_v, x_h) = layers->ptr<GatedMaskedConvImpl>(i)->forward(x_v, x_h, classes);
  return output_conv->forward(x_h);  // [N, K, h, w]
}

namespace {

void check_no_image_condition(const PriorCondition& cond, const char* where) {
  if (cond.cond_codes.defined())
    fail(where,
         "cond_codes: the PixelCNN prior takes no condition image (got {}); use the gpt "
         "prior for image conditioning",
         shape_str(cond.cond_codes.sizes()));
}

}  // namespace

torch::Tensor PixelCNNImpl::logits(const torch::Tensor& codes, const PriorCondition& cond) {
  check_inputs(codes, cond, "pixelcnn::logits");
  check_no_image_condition(cond, "pixelcnn::logits");
  return forward(codes, cond.labels);
}

torch::Tensor PixelCNNImpl::sample(int64_t n, int64_t h, int64_t w, const PriorCondition& cond,
                                   const SamplingOptions& options, at::Generator& generator) {
  options.validate("pixelcnn::sample");
  if (n < 1 || h < 1 || w < 1)
    fail("pixelcnn::sample", "expected n, h, w >= 1, got n={}, {}x{}", n, h, w);
  check_no_image_condition(cond, "pixelcnn::sample");
  const auto device = embedding->weight.device();
  auto codes = torch::zeros({n, h, w}, torch::TensorOptions(torch::kInt64).device(device));
  check_inputs(codes, cond, "pixelcnn::sample");  // the labels against n
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  options.check_given(n, h, w, num_codes(), "pixelcnn::sample");
  auto so_far = [&](int64_t done) {  // cells not drawn yet read -1
    return codes.view({n, -1})
        .index_fill(1, torch::arange(done, h * w, codes.device()), -1)
        .view({n, h, w});
  };
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      // Rows below i do not reach row i, so rows 0..i suffice: [n, K, i + 1, w].
      auto logits = [&] {
        return forward(codes.slice(1, 0, i + 1), cond.labels).select(2, i).select(2, j);
      };
      codes.select(1, i).select(1, j).copy_(options.cell_tokens(logits, i * w + j, w, generator));
      options.report([&] { return so_far(i * w + j + 1); }, i * w + j + 1, h * w);
    }
  }
  train(was_training);
  return codes;
}

}  // namespace lf
