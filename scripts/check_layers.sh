#!/usr/bin/env bash
# The library's layers, lowest first: a file under src/ may include its own folder's headers and
# those of folders before it here, never after (ctest `layers`).
#   bash scripts/check_layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
layers=(core io viz distributed data losses models priors train eval runs latentforge)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
status=0
for dir in src/*/; do
  own=$(basename "$dir")
  if [ -z "${rank[$own]+x}" ]; then
    echo "check_layers: src/$own is not in the list of layers (scripts/check_layers.sh)" >&2
    status=1
    continue
  fi
  while IFS=: read -r file line include; do
    [[ $include =~ ^#include\ \"([a-z_]+)/ ]] || continue
    target=${BASH_REMATCH[1]}
    [ -n "${rank[$target]+x}" ] || continue
    if [ "${rank[$target]}" -gt "${rank[$own]}" ]; then
      echo "$file:$line: $own includes $target, a higher layer (order: ${layers[*]})" >&2
      status=1
    fi
  done < <(grep -Hn '^#include "[a-z_]*/' "$dir"*.h "$dir"*.cpp 2>/dev/null || true)
done
[ $status -eq 0 ] && echo "check_layers: every include goes to the same or a lower layer"
exit $status
