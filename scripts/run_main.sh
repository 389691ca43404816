#!/usr/bin/env bash
# Installs what is needed, builds, and runs the main job on the embedded default dataset
# (Debian's Fashion-MNIST): for now, loads it and writes a grid of its images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/latentforge preview --split train --count 16 --nrow 4 --out runs/main/fashion_mnist_grid.png
