#!/usr/bin/env bash
# Scores generation on Fashion-MNIST with the classifier (runs/classifier_fashion): Frechet distance
# to the 10,000 test images in its penultimate features, and the accuracy of class-conditional
# samples, for each trained prior against two floors (VAE samples, uniformly random codes).
# Usage: bash scripts/eval_generation.sh [N samples, default 5000]   (after training the runs below)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
LF=${LF:-build/latentforge}
OUT=runs/generation_eval
CLASSIFIER=${CLASSIFIER:-runs/classifier}
mkdir -p "$OUT"

sample() {  # name, sample arguments...
  local name=$1
  shift
  if [ ! -f "$OUT/$name.safetensors" ]; then
    "$LF" sample "$@" -n "$N" --out "$OUT/$name.safetensors"
  fi
  "$LF" score --classifier "$CLASSIFIER" "$OUT/$name.safetensors" --out "$OUT/$name.json" >/dev/null
  echo "$name: $(cat "$OUT/$name.json" | tr -d '\n ')"
}

"$LF" score --classifier "$CLASSIFIER" --real-halves --out "$OUT/real_halves.json" >/dev/null
echo "real test halves: $(cat "$OUT/real_halves.json" | tr -d '\n ')"
[ -f runs/vae_fashion/model.safetensors ] && sample vae --model runs/vae_fashion
sample uniform_codes --model runs/vqvae_fashion --prior uniform
for prior in pixelcnn_fashion gpt_fashion; do
  [ -f "runs/$prior/model.safetensors" ] && sample "$prior" --prior "runs/$prior" --class all
done
if [ -f runs/gpt_fashion_sketch/model.safetensors ]; then
  "$LF" edges --first "$N" --out "$OUT/test_sketches.safetensors"
  sample gpt_fashion_sketch --prior runs/gpt_fashion_sketch --cond "$OUT/test_sketches.safetensors"
fi
