#!/usr/bin/env bash
# Installs everything latentforge needs from Debian's archive. Safe to run twice.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  libtorch-dev libopenblas0-pthread  # OpenBLAS replaces the reference BLAS that libtorch would otherwise use
  libstb-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libcpp-httplib-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  python3-torch python3-numpy
  libjpeg62-turbo-dev  # libjpeg-turbo, the JPEG decoder (src/io/jpeg_decoder.h: not stb's)
  libjemalloc-dev      # the allocator linked into every binary (CMakeLists.txt: LF_JEMALLOC)
  libdnnl-dev          # oneDNN headers for the Winograd path; the library is libtorch's libdnnl2
  libtcmalloc-minimal4 # only for bench/: the Python reference with tcmalloc preloaded
  libgloo-dev          # headers of Gloo, the CPU backend of distributed training (c10d in libtorch)
  libplplot-dev plplot-driver-cairo  # the run reports' plots (PLplot, drawn in memory by cairo)
  chromium fonts-dejavu-core  # the web UI's browser tests (tests/browser/: headless, needs a font)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
