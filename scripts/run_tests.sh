#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite with ctest (GPU-labelled tests
# skip themselves without CUDA). With LF_FUZZ_SMOKE=1 (as .ci/run sets it), each parser's fuzz
# target then runs for 30 s (scripts/fuzz.sh; its own clang build in build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser_tests.sh  # the web UI's browser tests (ctest label browser)
bash scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "$(nproc)" --timeout 900)
if [ "${LF_FUZZ_SMOKE:-0}" = 1 ]; then
  bash scripts/fuzz.sh all "${LF_FUZZ_SECONDS:-30}"
fi
