#!/usr/bin/env bash
# Installs what is needed, builds, and runs the main job on the embedded default dataset
# (Debian's Fashion-MNIST): trains the default VQ-VAE and writes, in runs/main/,
# reconstructions.png, codebook_usage.png, training_curves.png and metrics.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target latentforge  # the CLI and its library only: no tests, no benchmarks
./build/latentforge train --config configs/vqvae_fashion.yaml --out runs/main --force
