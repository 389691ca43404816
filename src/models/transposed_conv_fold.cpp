// Folded stride-2 transposed convolution: see transposed_conv_fold.h.
#include "models/transposed_conv_fold.h"

#include <algorithm>
#include <array>
#include <vector>

#include "core/error.h"

namespace lf {
namespace {
namespace F = torch::nn::functional;

// Which kernel taps each output phase uses, along one dimension, for kernel size k and padding p.
// Output o = 2m + a receives input i through tap t exactly when o = 2i - p + t, so phase a uses
// the taps t = a + p (mod 2), reading input m + r with r = (a + p - t) / 2. Phase a's window of
// T positions starts at offset start[a]; tap[a][j] is the tap at window position j, or -1.
struct PhaseTaps {
  int64_t span = 0;
  std::array<int64_t, 2> start{};
  std::array<std::vector<int64_t>, 2> tap;
};

PhaseTaps phase_taps(int64_t k, int64_t p) {
  PhaseTaps g;
  for (int64_t a = 0; a < 2; ++a) {
    int64_t lo = 0, hi = 0, count = 0;
    for (int64_t t = 0; t < k; ++t) {
      if ((t - a - p) % 2 != 0) continue;
      const int64_t r = (a + p - t) / 2;
      lo = count == 0 ? r : std::min(lo, r);
      hi = count == 0 ? r : std::max(hi, r);
      ++count;
    }
    if (count == 0)
      fail("conv_transpose2x_folded", "kernel size {} leaves output phase {} without taps", k, a);
    g.start[a] = lo;
    g.span = std::max(g.span, hi - lo + 1);
  }
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t j = 0; j < g.span; ++j) {
      const int64_t t = a + p - 2 * (g.start[a] + j);
      g.tap[a].push_back(t >= 0 && t < k ? t : -1);
    }
  return g;
}

// One dimension of the folded conv over an input of `size`: padding before and after it, where
// phase a's outputs start in the conv's output, and how many there are.
struct PhaseGeometry {
  int64_t pad_before = 0, pad_after = 0, out = 0;
  std::array<int64_t, 2> first{}, count{};
};

PhaseGeometry phase_geometry(const PhaseTaps& g, int64_t size, int64_t k, int64_t p, int64_t op) {
  PhaseGeometry d;
  d.out = 2 * (size - 1) - 2 * p + k + op;
  if (d.out < 1)
    fail("conv_transpose2x_folded", "an input of {} gives an empty output (kernel {}, padding {})",
         size, k, p);
  d.pad_before = std::max<int64_t>(0, -std::min(g.start[0], g.start[1]));
  int64_t needed = 0;  // conv outputs the phases need
  for (int64_t a = 0; a < 2; ++a) {
    d.first[a] = g.start[a] + d.pad_before;
    d.count[a] = (d.out - a + 1) / 2;
    needed = std::max(needed, d.first[a] + d.count[a]);
  }
  d.pad_after = std::max<int64_t>(0, needed - (size + d.pad_before - g.span + 1));
  return d;
}

void check_weight(const torch::Tensor& weight, int64_t padding) {
  if (weight.dim() != 4 || weight.size(2) != weight.size(3) || weight.size(2) < 2 || padding < 0)
    fail("conv_transpose2x_folded",
         "expected a square transposed-conv weight [I, O, k >= 2, k] and padding >= 0, got {} "
         "and {}",
         shape_str(weight.sizes()), padding);
}

}  // namespace

torch::Tensor conv_transpose2x_folded_weight(const torch::Tensor& weight, int64_t padding) {
  check_weight(weight, padding);
  const PhaseTaps g = phase_taps(weight.size(2), padding);
  const auto oihw = weight.transpose(0, 1);  // [O, I, k, k]: an ordinary conv's layout
  const auto fold = [&](const torch::Tensor& t, int64_t dim, int64_t phase) {
    std::vector<torch::Tensor> taps;  // window positions along dim
    for (const int64_t tap : g.tap[phase])
      taps.push_back(tap >= 0 ? t.narrow(dim, tap, 1) : torch::zeros_like(t.narrow(dim, 0, 1)));
    return torch::cat(taps, dim);
  };
  std::vector<torch::Tensor> phases;
  for (int64_t a = 0; a < 2; ++a) {
    const auto rows = fold(oihw, 2, a);                                  // [O, I, T, k]
    for (int64_t b = 0; b < 2; ++b) phases.push_back(fold(rows, 3, b));  // [O, I, T, T]
  }
  return torch::cat(phases, 0);  // [4O, I, T, T]
}

torch::Tensor conv_transpose2x_folded(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, int64_t padding,
                                      int64_t output_padding) {
  check_weight(weight, padding);
  if (x.dim() != 4 || x.size(1) != weight.size(0) || output_padding < 0 || output_padding > 1)
    fail("conv_transpose2x_folded",
         "expected x [N, {}, H, W] and output_padding 0 or 1 (stride 2), got {} and {}",
         weight.size(0), shape_str(x.sizes()), output_padding);
  const int64_t n = x.size(0), c_out = weight.size(1), k = weight.size(2);
  const PhaseTaps g = phase_taps(k, padding);
  const PhaseGeometry rows = phase_geometry(g, x.size(2), k, padding, output_padding);
  const PhaseGeometry cols = phase_geometry(g, x.size(3), k, padding, output_padding);
  const auto folded = conv_transpose2x_folded_weight(weight, padding);  // [4O, I, T, T]
  auto options = F::Conv2dFuncOptions().bias(bias.defined() ? bias.repeat({4}) : bias);
  torch::Tensor phases;  // [N, 4O, H', W']
  if (rows.pad_before == rows.pad_after && cols.pad_before == cols.pad_after) {
    phases = F::conv2d(x, folded, options.padding({rows.pad_before, cols.pad_before}));
  } else {
    const auto padded = F::pad(
        x, F::PadFuncOptions({cols.pad_before, cols.pad_after, rows.pad_before, rows.pad_after}));
    phases = F::conv2d(padded, folded, options);
  }
  phases = phases.view({n, 2, 2, c_out, phases.size(2), phases.size(3)});  // [N, a, b, O, H', W']
  auto y = torch::empty({n, c_out, rows.out, cols.out}, x.options());
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 2; ++b)
      y.slice(2, a, rows.out, 2)
          .slice(3, b, cols.out, 2)
          .copy_(phases.select(1, a)
                     .select(1, b)
                     .narrow(2, rows.first[a], rows.count[a])
                     .narrow(3, cols.first[b], cols.count[b]));
  return y;  // [N, O, H_out, W_out]
}

torch::Tensor conv_transpose_forward(torch::nn::ConvTranspose2dImpl& module,
                                     const torch::Tensor& x) {
  const auto& o = module.options;
  const auto stride = *o.stride(), dilation = *o.dilation();
  const auto kernel = *o.kernel_size(), out_pad = *o.output_padding();
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool foldable = x.device().is_cpu() && x.dim() == 4 && stride[0] == 2 && stride[1] == 2 &&
                        dilation[0] == 1 && dilation[1] == 1 && o.groups() == 1 &&
                        kernel[0] == kernel[1] && kernel[0] >= 2 && padding &&
                        (**padding)[0] == (**padding)[1] && out_pad[0] == out_pad[1] &&
                        c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
  if (!foldable) return module.forward(x);
  return conv_transpose2x_folded(x, module.weight, module.bias, (**padding)[0], out_pad[0]);
}

}  // namespace lf
