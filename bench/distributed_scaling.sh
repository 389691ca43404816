#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same config trained by 1 process with every core and
# by N processes splitting the cores (`train --nproc N`, Gloo on loopback), the global batch kept.
# Prints images/s, the speed-up, the time rank 0 waited on collectives per step and the bytes it
# all-reduced per step, from the runs' log.jsonl (the first logged window, warm-up, is left out).
#   bash bench/distributed_scaling.sh [CONFIG] [STEPS] [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/vqvae_fashion.yaml}
steps=${2:-200}
shift 2 2>/dev/null || shift $#
procs=("${@:-2}")
bin=${LF_BIN:-build/latentforge}
cores=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # name, nproc
  local name=$1 n=$2
  # /usr/bin/time: wall and system seconds and minor page faults of the whole command (workers
  # included: the launcher waits for them).
  local timing=(/usr/bin/time -f "%e %S %R" -o "$work/$name.time")
  if [ "$n" = 1 ]; then
    "${timing[@]}" "$bin" --threads "$cores" train --config "$config" --out "$work/$name" --no-report \
      --set train.steps="$steps" --set train.preview_every=-1 >/dev/null 2>&1
  else
    "${timing[@]}" "$bin" train --nproc "$n" --config "$config" --out "$work/$name" --no-report \
      --set train.steps="$steps" --set train.preview_every=-1 >/dev/null 2>&1
  fi
}

run p1 1
for n in "${procs[@]}"; do run "p$n" "$n"; done

/usr/bin/python3 - "$work" "$cores" "$config" "$steps" "${procs[@]}" <<'PY'
import json, sys
work, cores, config, steps, procs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
def summary(name):
    recs = [json.loads(l) for l in open(f"{work}/{name}/log.jsonl") if l.startswith("{")]
    recs = [r for r in recs if "images_per_s" in r][1:]  # the first window warms up
    ips = sum(r["images_per_s"] for r in recs) / len(recs)
    first, last = recs[0], recs[-1]
    span = last["step"] - first["step"]
    wait = (last.get("comm_wait_s", 0) - first.get("comm_wait_s", 0)) / span if span else 0
    mb = (last.get("reduced_mb", 0) - first.get("reduced_mb", 0)) / span if span else 0
    wall, system, faults = open(f"{work}/{name}.time").read().split()[-3:]
    return ips, wait, mb, float(wall), float(system), int(faults)
base, _, _, wall, system, faults = summary("p1")
print(f"{config}, {steps} steps, {cores} cores; global batch as in the config")
print("| processes | threads each | images/s | speed-up | collective wait per step (ms) "
      "| all-reduced per step (MB) | whole command: wall s, system s, minor faults |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print(f"| 1 | {cores} | {base:.0f} | 1.00 | - | - | {wall:.1f}, {system:.1f}, {faults} |")
for n in procs:
    ips, wait, mb, wall, system, faults = summary(f"p{n}")
    print(f"| {n} | {max(1, cores // int(n))} | {ips:.0f} | {ips / base:.2f} | {wait * 1000:.1f} "
          f"| {mb:.2f} | {wall:.1f}, {system:.1f}, {faults} |")
PY
