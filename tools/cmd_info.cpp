// `latentforge info`: version, LibTorch version, devices, threads and the CPU conv path.
#include <cstdio>

#include "cli.h"
#include "core/allocator.h"
#include "core/runtime.h"
#include "core/torch_compat.h"
#include "models/conv_algorithm.h"

namespace lf::cli {

void register_info(CLI::App& app, const GlobalOptions& globals) {
  auto* cmd = app.add_subcommand("info", "print version, LibTorch version, devices and threads");
  cmd->callback([&globals] {
    apply_globals(globals);
    const auto device = parse_device(globals.device);
    std::printf("latentforge %s\n", LF_VERSION);
    std::printf("libtorch    %s\n", compat::torch_version().c_str());
    std::printf("threads     %d (of %d cores)\n", torch::get_num_threads(), hardware_threads());
    const int gpus = cuda_device_count();
    std::printf("cuda        %s\n",
                gpus > 0 ? (std::to_string(gpus) + " device(s)").c_str() : "not available");
    std::printf("device      %s\n", device.str().c_str());
    std::printf("conv        %s\n", conv_algorithm_summary().c_str());
    std::printf("allocator   %s\n", allocator_summary().c_str());
  });
}

}  // namespace lf::cli
