// Nearest x2 upsampling followed by a 3x3 conv (padding 1), computed as four 2x2 convs on the
// low-resolution input, one per output phase (the fused upscale2d_conv2d of StyleGAN): 4/9 of the
// multiply-adds, no 4x-sized upsampled tensor, the same result up to float rounding. The folded
// kernels are derived from the 3x3 weight in every call (a few ms at 512 channels against a conv
// of hundreds), so checkpoints keep the 3x3 weight and gradients flow to it.
#pragma once

#include <torch/torch.h>

namespace lf {

// weight [O, I, 3, 3] -> [4 * O, I, 2, 2]: the kernels of output phases (p, q) = (0,0), (0,1),
// (1,0), (1,1) in that order. Phase p (row parity) reads low-res rows a-1+p and a+p; the 3x3 taps
// landing on each are summed: phase 0 -> (tap 0, taps 1+2), phase 1 -> (taps 0+1, tap 2).
torch::Tensor upsample_conv_folded_weight(const torch::Tensor& weight);

// conv3x3(nearest2x(x), weight, bias, padding 1). x: [N, I, H, W] -> [N, O, 2H, 2W]
torch::Tensor upsample_conv_folded(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias);

}  // namespace lf
