#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite with ctest (GPU-labelled tests
# skip themselves without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 900
