#!/usr/bin/env bash
# Kill -9 soak test of training: trains CONFIG once uninterrupted, then the same run again while
# killing it with SIGKILL at KILLS random moments (every fourth one while a checkpoint is being
# written) and resuming each time. Checks that every checkpoint left behind is readable (by an
# independent reader, python3-torch), that log.jsonl has each step once, and that the final
# weights are bitwise identical to the uninterrupted run's. Prints a summary line per kill and a
# result table.
# Usage: bash scripts/soak_resume.sh CONFIG [KILLS] [--set key=value ...]
#   e.g. bash scripts/soak_resume.sh configs/vqvae_fashion.yaml 20 --set train.steps=300
set -euo pipefail
cd "$(dirname "$0")/.."
LF=${LF:-build/latentforge}
CONFIG=${1:?usage: soak_resume.sh CONFIG [KILLS] [--set key=value ...]}
KILLS=${2:-20}
shift $(($# >= 2 ? 2 : 1))
OVERRIDES=("$@")
NAME=$(basename "$CONFIG" .yaml)
OUT=${SOAK_DIR:-runs/soak_$NAME}
rm -rf "$OUT"
mkdir -p "$OUT"

log_lines() {  # records in the killed run's log so far
  if [ -f "$RUN/log.jsonl" ]; then wc -l <"$RUN/log.jsonl"; else echo 0; fi
}

verify_checkpoints() {  # run folder: every complete checkpoint must load in Python
  /usr/bin/python3 - "$1" <<'PY'
import json, os, struct, sys
import torch
run = sys.argv[1]
root = os.path.join(run, "checkpoints")
latest = open(os.path.join(root, "latest")).read().strip() if os.path.exists(os.path.join(root, "latest")) else None
names = sorted(n for n in os.listdir(root) if n.startswith("step_") and "." not in n) if os.path.isdir(root) else []
if latest is not None and latest not in names:
    sys.exit(f"latest names {latest}, which is not a complete checkpoint folder")
for name in names:
    d = os.path.join(root, name)
    for f in os.listdir(d):
        p = os.path.join(d, f)
        if f.endswith(".safetensors"):
            blob = open(p, "rb").read()
            (n,) = struct.unpack("<Q", blob[:8])
            header = json.loads(blob[8:8 + n])
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            if 8 + n + end != len(blob):
                sys.exit(f"{p}: {len(blob)} bytes, header says {8 + n + end}")
        elif f.endswith(".pt"):
            torch.jit.load(p)  # the TorchScript archive torch::serialize writes
        elif f == "config.json":
            json.load(open(p))
        else:
            sys.exit(f"{p}: unexpected file in a checkpoint")
print(len(names))
PY
}

echo "soak: $CONFIG, $KILLS kills, overrides: ${OVERRIDES[*]:-none}"
start=$(date +%s.%N)
"$LF" train --config "$CONFIG" --out "$OUT/reference" --no-report "${OVERRIDES[@]}" \
  >"$OUT/reference.log" 2>&1
reference_s=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
echo "uninterrupted run: ${reference_s} s"

kills=0 during_write=0 resumes=0 checked=0
RUN="$OUT/killed"
start=$(date +%s.%N)
while true; do
  if [ ! -f "$RUN/config.json" ]; then  # nothing written yet (or killed before it was): start
    cmd=(train --config "$CONFIG" --out "$RUN" --no-report "${OVERRIDES[@]}")
  else
    cmd=(train --resume "$RUN" --no-report)
  fi
  "$LF" "${cmd[@]}" >>"$OUT/killed.log" 2>&1 &
  pid=$!
  resumes=$((resumes + 1))
  if [ $kills -ge "$KILLS" ]; then
    wait $pid || { echo "soak: the final resume failed (see $OUT/killed.log)"; exit 1; }
    break
  fi
  if [ $((kills % 4)) -eq 3 ]; then
    # Wait for a checkpoint write to begin (a step_*.tmp folder), then kill inside it.
    while kill -0 $pid 2>/dev/null && ! compgen -G "$RUN/checkpoints/step_*.tmp" >/dev/null; do
      sleep 0.005
    done
  else
    # A random point of progress, whatever the machine's speed: after 0-4 more log records than
    # the run had when it was resumed (0 = during start-up), then up to half a second more.
    target=$(($(log_lines) + RANDOM % 5))
    while kill -0 $pid 2>/dev/null && [ "$(log_lines)" -lt $target ]; do
      sleep 0.05
    done
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", r / 32767 / 2 }')"
  fi
  if ! kill -0 $pid 2>/dev/null; then  # finished before the kill: a complete run
    wait $pid || { echo "soak: a resume failed (see $OUT/killed.log)"; exit 1; }
    [ -f "$RUN/model.safetensors" ] && break
    continue
  fi
  writing=no
  compgen -G "$RUN/checkpoints/step_*.tmp" >/dev/null && writing=yes
  kill -9 $pid
  wait $pid 2>/dev/null || true
  kills=$((kills + 1))
  [ $writing = yes ] && during_write=$((during_write + 1))
  step=$( (tail -c 300 "$RUN/log.jsonl" 2>/dev/null || true) | (grep -o '"step":[0-9]*' || true) | tail -1 | cut -d: -f2)
  n=$(verify_checkpoints "$RUN") || { echo "soak: unreadable checkpoint after kill $kills"; exit 1; }
  checked=$((checked + n))
  echo "kill $kills: last logged step ${step:-none}, during a checkpoint write: $writing, $n checkpoints readable"
done
killed_s=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
verify_checkpoints "$RUN" >/dev/null

identical=no
cmp -s "$OUT/reference/model.safetensors" "$RUN/model.safetensors" && identical=yes
log_check=$(/usr/bin/python3 - "$OUT/reference/log.jsonl" "$RUN/log.jsonl" <<'PY'
import json, sys
def steps(path):
    return [r["step"] for r in map(json.loads, open(path)) if "event" not in r]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
print("yes" if a == b and len(set(b)) == len(b) else f"no ({len(b)} records, {len(set(b))} distinct, reference {len(a)})")
PY
)
echo
echo "| config | kills | during a checkpoint write | resumes | checkpoints verified | log steps once | final weights identical | uninterrupted s | killed + resumed s |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| $NAME ${OVERRIDES[*]:-} | $kills | $during_write | $resumes | $checked | $log_check | $identical | ${reference_s%.*} | ${killed_s%.*} |"
[ $identical = yes ] && [ "$log_check" = yes ]
