#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ when needed and runs one of
# them, or each in turn, single-process for SECONDS, on a corpus seeded from tests/fixtures.
#   bash scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#   bash scripts/fuzz.sh all 30          # every target for 30 s (the CI smoke run)
# Targets: safetensors idx image config zip pickle checkpoint sample_inputs.
# Crashing inputs land in build-fuzz/artifacts/TARGET/; the grown corpus in build-fuzz/corpus/.
# Exit status: non-zero when a target crashed, leaked, ran out of memory or hung.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(safetensors idx image config zip pickle checkpoint sample_inputs)
if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags]; targets: ${targets[*]}" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [ "$target" != all ] && [[ ! " ${targets[*]} " =~ " $target " ]]; then
  echo "fuzz.sh: unknown target '$target' (expected all or one of: ${targets[*]})" >&2
  exit 2
fi
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}

# The main setup, plus clang and its runtimes (libFuzzer, ASan, UBSan: libclang-rt-14-dev).
bash scripts/setup.sh >/dev/null
fuzz_packages=(clang-14 libclang-rt-14-dev)
missing=()
for p in "${fuzz_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "fuzz.sh: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DLF_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1" >/dev/null
fi
if [ "$target" = all ]; then run=("${targets[@]}"); else run=("$target"); fi
# Several fuzz.sh may run at once (one target per core): one builds at a time, each has its seeds.
flock "$BUILD/.build.lock" ninja -C "$BUILD" fuzz_make_seeds "${run[@]/#/fuzz_}"

# Seeds: the fixtures of each kind, small enough for the input size limit.
max_len=131072
seeds=$(mktemp -d "$BUILD/seeds.XXXXXX")
trap 'rm -rf "$seeds"' EXIT
"$BUILD/fuzz/fuzz_make_seeds" "$seeds"
add() {  # add KIND FILES...: copies the files under max_len bytes into seeds/KIND
  local kind=$1
  shift
  mkdir -p "$seeds/$kind"
  for f in "$@"; do
    [ "$(stat -c %s "$f")" -le $max_len ] && cp "$f" "$seeds/$kind/$(echo "$f" | tr / _)"
  done
  return 0
}
mapfile -t safetensors < <(find tests/fixtures -name '*.safetensors' | sort)
mapfile -t checkpoints < <(find tests/fixtures \( -name '*.ckpt' -o -name '*.pt' \) | sort)
mapfile -t configs < <(find tests/fixtures configs \( -name '*.yaml' -o -name '*.json' \) | sort)
add safetensors "${safetensors[@]}"
add sample_inputs "${safetensors[@]}"
add checkpoint "${checkpoints[@]}"
add zip "${checkpoints[@]}"
add config "${configs[@]}"
mapfile -t images < <(find tests/fixtures \( -name '*.png' -o -name '*.jpg' -o -name '*.bmp' \) | sort)
add image "${images[@]}"
mkdir -p "$seeds/pickle"  # the data.pkl of each zip checkpoint
python3 - "$seeds/pickle" "${checkpoints[@]}" <<'PY'
import sys, zipfile
for i, path in enumerate(sys.argv[2:]):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("/data.pkl"):
                    open(f"{sys.argv[1]}/{i}.pkl", "wb").write(z.read(name))
PY

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
for t in "${run[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/artifacts/$t"
  echo "== fuzz_$t for ${seconds}s"
  set +e
  "$BUILD/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=$max_len -timeout=60 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t/" "$@" \
    "$BUILD/corpus/$t" "$seeds/$t" 2>"$BUILD/fuzz_$t.log"
  rc=$?
  set -e
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^(INFO: Seed|Done)' \
    "$BUILD/fuzz_$t.log" || true
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t FAILED (exit $rc); log: $BUILD/fuzz_$t.log" >&2
    grep -E -A 30 '^==[0-9]+==ERROR|runtime error|deadly signal|Test unit written' \
      "$BUILD/fuzz_$t.log" | head -60 >&2 || true
    status=1
  fi
done
exit $status
