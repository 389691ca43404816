#!/usr/bin/env bash
# The installed package as a host program sees it: `cmake --install` into a temporary prefix,
# both examples built against it with find_package and with pkg-config, run, and their outputs
# compared with the CLI's on the same inputs (the decoded PNG byte for byte, the code maps value
# for value).   install_test.sh BUILD_DIR LATENTFORGE_CLI
set -euo pipefail
build=$(cd "$1" && pwd)
cli=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
fixtures=$src/tests/fixtures/ldm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "install_test: $*"; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
say "installed into $prefix"
# The public headers only, the shared library with its soname, the package files.
headers=$(cd "$prefix/include/latentforge" && ls | tr '\n' ' ')
[ "$headers" = "latentforge.h latentforge.hpp version.h " ] || { say "headers: $headers"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name 'liblatentforge.so' | head -1)")
[ -f "$libdir/cmake/latentforge/latentforge-config.cmake" ]
[ -f "$libdir/pkgconfig/latentforge.pc" ]
[ -x "$prefix/bin/latentforge" ]
# Only the API is exported: no internal lf:: symbol leaks into a host program's namespace.
if nm -D --defined-only -C "$libdir/liblatentforge.so" | grep -q ' lf::'; then
  say "liblatentforge.so exports internal lf:: symbols"
  exit 1
fi
nm -D --defined-only "$libdir/liblatentforge.so" | grep -q ' lf_decode$'

# Inputs: a 64x48 RGB pattern as PNG (written with Python's zlib, no image library needed).
python3 - "$work/in.png" <<'PY'
import struct, sys, zlib
w, h = 64, 48
rows = b"".join(b"\0" + bytes(v for x in range(w) for v in ((x * 4) % 256, (y * 5) % 256,
                ((x + y) * 3) % 256)) for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
kl=(--config "$fixtures/sd_kl_small.yaml" --weights "$fixtures/sd_kl_small.safetensors")
vq=(--config "$fixtures/taming_vqgan.yaml" --weights "$fixtures/taming_vqgan.safetensors")
"$cli" encode "${kl[@]}" "$work/in.png" --out "$work/latents.safetensors" 2>/dev/null
"$cli" decode "${kl[@]}" "$work/latents.safetensors" --out "$work/cli_decoded.png" 2>/dev/null
"$cli" encode "${vq[@]}" "$work/in.png" --out "$work/codes.safetensors" 2>/dev/null
# The CLI's code maps in the example's format (indices: int64 [N, h, w] in a safetensors file).
python3 - "$work/codes.safetensors" "$work/in.png" > "$work/cli_codes.txt" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
info = header["indices"]
assert info["dtype"] == "I64", info
b, h, w = info["shape"]
begin, end = info["data_offsets"]
values = struct.unpack("<%dq" % (b * h * w), raw[8 + n + begin:8 + n + end])
for i in range(b):
    print("%s[%d] %dx%d" % (sys.argv[2], i, h, w))
    for y in range(h):
        print(" ".join(str(values[(i * h + y) * w + x]) for x in range(w)))
PY

check() {  # check HOW DECODE_BIN TOKENIZE_BIN
  local how=$1 decode=$2 tokenize=$3
  "$decode" "$fixtures/sd_kl_small.yaml" "$fixtures/sd_kl_small.safetensors" \
    "$work/latents.safetensors" "$work/$how.png" > /dev/null
  cmp "$work/$how.png" "$work/cli_decoded.png" || { say "$how: decode differs from the CLI's"; exit 1; }
  "$tokenize" "${vq[@]}" "$work/in.png" | grep -v '^#' > "$work/$how.txt"
  diff -q "$work/$how.txt" "$work/cli_codes.txt" >/dev/null ||
    { say "$how: code maps differ from the CLI's"; diff "$work/$how.txt" "$work/cli_codes.txt" | head; exit 1; }
  say "$how: decoded PNG identical to the CLI's, code maps identical ($(wc -l < "$work/$how.txt") lines)"
}

# 1. CMake: find_package(latentforge) from the prefix, nothing from the source or build tree.
cmake -S "$src/examples" -B "$work/with_cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/with_cmake" >/dev/null
check find_package "$work/with_cmake/decode_sd_latents" "$work/with_cmake/tokenize"

# 2. pkg-config, with plain compiler calls.
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion latentforge)" = "$("$cli" info | awk '/^latentforge/ {print $2}')" ]
cc -std=c99 -Wall -Wextra -Werror "$src/examples/decode_sd_latents.c" \
  $(pkg-config --cflags --libs latentforge) -o "$work/pc_decode"
c++ -std=c++17 -O1 "$src/examples/tokenize.cpp" $(pkg-config --cflags --libs latentforge) \
  -o "$work/pc_tokenize"
check pkg-config "$work/pc_decode" "$work/pc_tokenize"

# Bad input reaches the example as one line and a non-zero exit, no output file.
if "$work/pc_decode" "$fixtures/sd_kl_small.yaml" "$fixtures/sd_kl_small.safetensors" \
  "$work/codes.safetensors" "$work/bad.png" 2> "$work/err.txt"; then
  say "decoding VQ codes as SD latents should fail"
  exit 1
fi
grep -q 'expected \[N, 4, h, w\]' "$work/err.txt" && [ ! -e "$work/bad.png" ]
say "ok"
