#!/usr/bin/env bash
# Configures and builds latentforge in ./build (Release, Ninja, ccache, unity batches).
# Leading `--target NAME` arguments build only those targets (run_main.sh: just the CLI and the
# library, no tests or benchmarks); the other arguments go to cmake, e.g.
#   -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
targets=()
while [ $# -ge 2 ] && [ "$1" = "--target" ]; do
  targets+=(--target "$2")
  shift 2
done
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
