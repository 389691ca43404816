// `bench train --profile`: where a training step's time goes, op by op, from LibTorch's own
// profiler (the legacy CPU one: Debian's LibTorch has no Kineto). Self time: an op's time minus
// the ops it called, on the thread that ran it (OpenMP workers inside an op count as the op's).
#pragma once

#include <cstdio>
#include <functional>

namespace lf {

// Runs `work` under the profiler and prints to `out` the `top` ops by self time, in ms per step
// (`steps` divides the totals) and as a share of the profiled wall time.
void print_op_profile(const std::function<void()>& work, int64_t steps, int top, std::FILE* out);

}  // namespace lf
