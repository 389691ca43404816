// Folded nearest x2 + 3x3 conv: see upsample_fold.h.
#include "models/upsample_fold.h"

#include "core/error.h"

namespace lf {
namespace F = torch::nn::functional;

torch::Tensor upsample_conv_folded_weight(const torch::Tensor& weight) {
  if (weight.dim() != 4 || weight.size(2) != 3 || weight.size(3) != 3)
    fail("upsample_conv_folded_weight", "expected a 3x3 conv weight [O, I, 3, 3], got {}",
         shape_str(weight.sizes()));
  const auto fold = [](const torch::Tensor& t, int64_t dim, int64_t phase) {
    const auto tap = [&](int64_t i) { return t.narrow(dim, i, 1); };
    return phase == 0 ? torch::cat({tap(0), tap(1) + tap(2)}, dim)
                      : torch::cat({tap(0) + tap(1), tap(2)}, dim);
  };
  std::vector<torch::Tensor> phases;
  for (int64_t p = 0; p < 2; ++p) {
    const auto rows = fold(weight, 2, p);                                // [O, I, 2, 3]
    for (int64_t q = 0; q < 2; ++q) phases.push_back(fold(rows, 3, q));  // [O, I, 2, 2]
  }
  return torch::cat(phases, 0);  // [4O, I, 2, 2]
}

torch::Tensor upsample_conv_folded(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias) {
  if (x.dim() != 4 || weight.dim() != 4 || x.size(1) != weight.size(1))
    fail("upsample_conv_folded", "expected x [N, {}, H, W] for a weight {}, got {}",
         weight.dim() > 1 ? weight.size(1) : 0, shape_str(weight.sizes()), shape_str(x.sizes()));
  const int64_t n = x.size(0), c_out = weight.size(0), h = x.size(2), w = x.size(3);
  // One conv gives all four phases on the (H+1) x (W+1) grid of the zero-padded input; that zero
  // padding is exactly the upsampled image's. Phase p of output row 2a+p is this conv's row a+p.
  const auto phases =
      F::conv2d(x, upsample_conv_folded_weight(weight),
                F::Conv2dFuncOptions().bias(bias.defined() ? bias.repeat({4}) : bias).padding(1))
          .view({n, 2, 2, c_out, h + 1, w + 1});               // [N, p, q, O, H+1, W+1]
  auto y = torch::empty({n, c_out, h, 2, w, 2}, x.options());  // y[n, o, a, p, b, q]
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t q = 0; q < 2; ++q)
      y.select(5, q).select(3, p).copy_(
          phases.select(2, q).select(1, p).narrow(2, p, h).narrow(3, q, w));
  return y.view({n, c_out, 2 * h, 2 * w});  // [N, O, 2H, 2W]
}

}  // namespace lf
