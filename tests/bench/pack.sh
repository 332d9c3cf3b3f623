#!/usr/bin/env bash
# Packing benchmark: a fake store path with SIZE_MIB of data (half random,
# half zeros, so gzip works on both kinds), packed by the layer writer.
# Prints throughput and peak memory; memory must stay flat as SIZE_MIB grows.
#   tests/bench/pack.sh [SIZE_MIB...]   (default: 64 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/bench-pack
work=$(mktemp -d /tmp/nixery-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(64 1024)
for size in "${sizes[@]}"; do
  store="$work/store"
  path="$store/$(printf '%032d' "$size")-bench-$size"
  rm -rf "$store"; mkdir -p "$path"
  head -c $((size / 2 * 1048576)) /dev/urandom > "$path/random"
  head -c $((size / 2 * 1048576)) /dev/zero > "$path/zeros"
  echo "== $size MiB"
  build/bench-pack "$store" "$path"
done
