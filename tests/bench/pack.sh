#!/usr/bin/env bash
# Packing benchmark, every figure from this one run, side by side with its
# yardsticks:
#  1. a store path of real binaries: a copy of the host's /usr/lib/gcc
#     (about 240 MB) built by Nix once, before anything is timed;
#  2. our layer writer on it (gzip and zstd, N threads; on 1 thread too,
#     which must give the same digests; gzip and zstd from one walk of the
#     files, as a registry serving zstd packs them) against tar | gzip -6,
#     tar | pigz -6 -p N and tar | zstd -3 -T N: seconds, MB/s, CPU
#     seconds, sizes, ratios;
#  3. a cold pull of that image (nixery run, fresh state; skopeo copy)
#     against nix-build + tar | pigz of the same closure;
#  4. peak memory of the writer on 64 MiB and 1 GiB of data (half random,
#     half zeros): it must not grow with the input.
#   tests/bench/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
make -s build/bench-pack build/nixery
export NIX_CONFIG='substituters ='
threads=$(nproc)
work=$(mktemp -d /tmp/nixery-bench-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
field() { sed -n "s/.*\\b$1 \\([^ ]*\\).*/\\1/p" <<<"$2"; }

# --- 1. the store path ---------------------------------------------------------
mkdir -p "$work/pkgs"
cat > "$work/pkgs/default.nix" <<EOF
{ system ? builtins.currentSystem }:
let
  demo = import $root/src/nix/demo { inherit system; };
  files = builtins.path { name = "host-usr-lib-gcc"; path = /usr/lib/gcc; };
in demo // {
  gccfiles = derivation {
    name = "gcc-files"; inherit system;
    builder = "\${demo.busybox}/bin/sh";
    args = [ "-c" "\${demo.busybox}/bin/cp -a \${files} \$out" ];
  };
}
EOF
path=$(nix-build --no-out-link "$work/pkgs" -A gccfiles 2>/dev/null)
input=$(du -sb --apparent-size "$path" | cut -f1)
mb=$(python3 -c "print('%.1f' % ($input / 1e6))")
echo "store path: $path ($mb MB, $threads CPUs)"

# --- 2. packing ----------------------------------------------------------------
rate() { python3 -c "import sys; print('%.1f' % ($input / 1e6 / float(sys.argv[1])))" "$1"; }
# Wall-clock seconds, and CPU seconds (user + system, of every process of
# a pipeline): on a busy machine the second is the steadier comparison.
declare -A secs cpu size digest
run_ours() { # name args...
  local name=$1; shift
  local out
  out=$(build/bench-pack "$@" /nix/store "$path")
  secs[$name]=$(field seconds "$out"); cpu[$name]=$(field cpu "$out")
  size[$name]=$(field bytes "$out"); digest[$name]=$(field digest "$out")
}
run_pipe() { # name command
  local name=$1 times wall user sys
  times=$( { /usr/bin/time -f "%e %U %S" bash -c \
    "tar -cf - -C /nix/store '$(basename "$path")' | $2 | wc -c > '$work/size'" ; } 2>&1 )
  read -r wall user sys <<<"$(tail -1 <<<"$times")"
  secs[$name]=$wall
  cpu[$name]=$(python3 -c "print('%.2f' % ($user + $sys))")
  size[$name]=$(cat "$work/size")
}
tar -cf - -C /nix/store "$(basename "$path")" > /dev/null # the page cache, for everyone alike
run_pipe "tar | gzip -6" "gzip -6"
run_pipe "tar | pigz -6 -p $threads" "pigz -6 -p $threads"
run_pipe "tar | zstd -3 -T$threads" "zstd -3 -T$threads"
run_ours "nixery gzip, $threads threads" --threads "$threads"
run_ours "nixery gzip, 1 thread" --threads 1
run_ours "nixery zstd, $threads threads" --zstd --threads "$threads"
run_ours "nixery zstd, 1 thread" --zstd --threads 1
run_ours "nixery gzip+zstd, one walk" --both --threads "$threads"

gzip_secs=${secs["tar | gzip -6"]}; gzip_size=${size["tar | gzip -6"]}
echo
printf '%-28s %8s %8s %10s %8s %12s %10s\n' "packing $mb MB" seconds MB/s "x gzip-6" "CPU s" bytes "vs gzip-6"
for name in "tar | gzip -6" "tar | pigz -6 -p $threads" "nixery gzip, $threads threads" \
            "nixery gzip, 1 thread" "tar | zstd -3 -T$threads" "nixery zstd, $threads threads" \
            "nixery zstd, 1 thread" "nixery gzip+zstd, one walk"; do
  printf '%-28s %8s %8s %9sx %8s %12s %9s%%\n' "$name" "${secs[$name]}" "$(rate "${secs[$name]}")" \
    "$(python3 -c "print('%.2f' % ($gzip_secs / ${secs[$name]}))")" "${cpu[$name]}" "${size[$name]}" \
    "$(python3 -c "print('%+.1f' % (100.0 * ${size[$name]} / $gzip_size - 100))")"
done
same() { [ "${digest[$1]}" = "${digest[$2]}" ] && echo "same digest" || echo "DIFFERENT DIGESTS"; }
echo "gzip, 1 and $threads threads: $(same "nixery gzip, 1 thread" "nixery gzip, $threads threads")"
echo "zstd, 1 and $threads threads: $(same "nixery zstd, 1 thread" "nixery zstd, $threads threads")"
echo "gzip and zstd twins (NIXERY_LAYER_COMPRESSION=zstd): one walk ${secs["nixery gzip+zstd, one walk"]} s," \
  "${cpu["nixery gzip+zstd, one walk"]} CPU s; two walks $(python3 -c "print('%.2f' % (${secs["nixery gzip, $threads threads"]} + ${secs["nixery zstd, $threads threads"]}))") s," \
  "$(python3 -c "print('%.2f' % (${cpu["nixery gzip, $threads threads"]} + ${cpu["nixery zstd, $threads threads"]}))") CPU s" \
  "($(same "nixery gzip+zstd, one walk" "nixery zstd, $threads threads") as zstd alone)"

# --- 3. cold pull ----------------------------------------------------------------
cold_pull() { # compression
  local port state=$work/state-$1 storage=$work/storage-$1 start
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PORT=$port STORAGE_PATH=$storage NIXERY_STATE_DIR=$state NIXERY_PKGS_PATH=$work/pkgs \
    NIXERY_LAYER_COMPRESSION=$1 NIXERY_LOG_LEVEL=warn build/nixery run > "$work/log-$1" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  start=$(now)
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/gccfiles:latest" "dir:$work/pulled-$1" >/dev/null
  since "$start"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
pull_gzip=$(cold_pull gzip)
pull_zstd=$(cold_pull zstd)
start=$(now)
closure=$(nix-build --no-out-link "$work/pkgs" -A gccfiles 2>/dev/null)
tar -cf - $(nix-store -qR "$closure") 2>/dev/null | pigz -6 -p "$threads" > /dev/null
yard=$(since "$start")
echo
printf '%-44s %8s\n' "cold pull of gccfiles (built already)" seconds
printf '%-44s %8s\n' "nix-build + tar | pigz -6 -p $threads (yardstick)" "$yard"
printf '%-44s %8s  (%sx the yardstick, %sx tar | gzip -6)\n' "nixery, gzip layers (skopeo copy)" "$pull_gzip" \
  "$(python3 -c "print('%.2f' % ($yard / $pull_gzip))")" "$(python3 -c "print('%.2f' % ($gzip_secs / $pull_gzip))")"
printf '%-44s %8s  (%sx the yardstick)\n' "nixery, zstd layers (skopeo copy, OCI)" "$pull_zstd" \
  "$(python3 -c "print('%.2f' % ($yard / $pull_zstd))")"

# --- 4. memory ---------------------------------------------------------------------
echo
printf '%-28s %12s %12s\n' "peak RSS (MiB)" gzip zstd
for mib in 64 1024; do
  store="$work/store"
  synthetic="$store/$(printf '%032d' "$mib")-bench-$mib"
  rm -rf "$store"; mkdir -p "$synthetic"
  head -c $((mib / 2 * 1048576)) /dev/urandom > "$synthetic/random"
  head -c $((mib / 2 * 1048576)) /dev/zero > "$synthetic/zeros"
  g=$(build/bench-pack --threads "$threads" "$store" "$synthetic")
  z=$(build/bench-pack --zstd --threads "$threads" "$store" "$synthetic")
  printf '%-28s %12s %12s\n' "$mib MiB, $threads threads" \
    "$(python3 -c "print('%.1f' % ($(field rss_kib "$g") / 1024))")" \
    "$(python3 -c "print('%.1f' % ($(field rss_kib "$z") / 1024))")"
done
rm -rf "$work/store"
