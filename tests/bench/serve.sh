#!/usr/bin/env bash
# Serving benchmark: a local instance (nixery run, filesystem storage) and,
# beside it, a plain nginx serving the very same bytes as static files with
# the same worker count, access log and sendfile: the yardstick. wrk drives
# both, one request kind after the other, in rounds of ours, static, static,
# ours (the reverse every other round); the figures are the medians of the
# runs, two per side and round.
#   tests/bench/serve.sh [SECONDS] [CONNECTIONS] [ROUNDS] [PATTERN]
# (default 5 s, 64 connections, 3 rounds, every request kind; PATTERN
# chooses the kinds whose names match, e.g. 'blob').
# Request kinds: a cached manifest by tag (GET, and HEAD as clients check a
# tag), a manifest by digest, a blob of about 4 KiB and one of 10 MiB
# (random bytes, which gzip leaves as they are); and a manifest by tag of
# instances on object stores (the GCS test server of tests/integration, and
# s3rver when tests/integration installed it under build/npm).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in wrk ab; do
  command -v $tool >/dev/null || { echo "$tool is needed (Debian packages wrk, apache2-utils)"; exit 1; }
done
make -s build/nixery
seconds=${1:-5}
connections=${2:-64}
rounds=${3:-3}
pattern=${4:-}
work=$(mktemp -d /tmp/nixery-bench-XXXXXX)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
static_port=$(free_port)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A package set with two packages of random bytes: each its own layer.
mkdir -p "$work/pkgs"
cat > "$work/pkgs/default.nix" <<'NIX'
{ system ? builtins.currentSystem }:
let
  busybox = builtins.path {
    name = "busybox";
    path = /usr/bin;
    filter = path: type: baseNameOf path == "busybox";
  };
  sh = "${busybox}/busybox";
  random = name: bytes: derivation {
    inherit name system;
    builder = sh;
    args = [ "sh" "-c" "${sh} mkdir $out && ${sh} head -c ${toString bytes} /dev/urandom > $out/data" ];
  };
in {
  small = random "bench-small" 3400;
  big = random "bench-big" 10483000;
}
NIX

NIX_CONFIG='substituters =' PORT=$port STORAGE_PATH=$work/storage NIXERY_STATE_DIR=$work/state \
  NIXERY_PKGS_PATH=$work/pkgs NIXERY_LOG_LEVEL=warn NIXERY_MANIFEST_RATE=0 build/nixery run > "$work/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/v2/big/small"
accept='Accept: application/vnd.docker.distribution.manifest.v2+json'
curl -sf -H "$accept" "$base/manifests/latest" -o "$work/manifest.json" || {
  echo "the image did not build:"; cat "$work/log"; exit 1; }
read -r manifest_digest small big small_size big_size < <(python3 - "$work/manifest.json" <<'PY'
import hashlib, json, sys
data = open(sys.argv[1], "rb").read()
layers = json.loads(data)["layers"]
small = min(layers, key=lambda l: abs(l["size"] - 4096))
big = min(layers, key=lambda l: abs(l["size"] - 10 * 2**20))
print("sha256:" + hashlib.sha256(data).hexdigest(), small["digest"], big["digest"], small["size"], big["size"])
PY
)

# The yardstick: the same bytes as files under the same URIs (a longer
# request line and log line cost something too), nginx as ours runs it.
# The blobs are the very files ours sends (hard links): a copy's pages in
# the page cache may come in other sizes (cp writes in its own pieces), and
# sending a file cached in 4 KiB pages costs nginx and the client about a
# fifth more than one cached in large folios.
static_root=$work/static/root/v2/big/small
mkdir -p "$static_root/manifests" "$static_root/blobs" "$work/static/tmp"
cp "$work/manifest.json" "$static_root/manifests/latest"
cp "$work/manifest.json" "$static_root/manifests/$manifest_digest"
for blob in "$small" "$big"; do
  ln "$work/storage/layers/${blob#sha256:}" "$static_root/blobs/$blob"
done
user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat > "$work/static/nginx.conf" <<CONF
$user
worker_processes 2;
pid $work/static/nginx.pid;
error_log $work/static/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
    access_log $work/static/access.log;
    client_body_temp_path $work/static/tmp;
    default_type application/octet-stream;
    server_tokens off;
    server {
        listen 127.0.0.1:$static_port;
        location / {
            root $work/static/root;
            sendfile on;
            tcp_nopush on;
        }
    }
}
CONF
nginx -p "$work/static" -e "$work/static/error.log" -c "$work/static/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$static_port/v2/big/small/manifests/latest" >/dev/null && break
  sleep 0.1
done

# An object store's manifests by tag take the same path through nginx's
# cache: an instance on the GCS test server (tests/integration), with the
# small image.
gcs_port=$(free_port)
gcs_instance_port=$(free_port)
/usr/bin/python3 tests/integration/gcs_server.py --port "$gcs_port" --bucket bench --no-auth --public-read \
  > "$work/gcs.log" 2>&1 &
pids+=($!)
NIX_CONFIG='substituters =' PORT=$gcs_instance_port NIXERY_STORAGE_BACKEND=gcs GCS_BUCKET=bench \
  STORAGE_EMULATOR_HOST=127.0.0.1:$gcs_port NIXERY_STATE_DIR=$work/gcs-state \
  NIXERY_PKGS_PATH=$work/pkgs NIXERY_LOG_LEVEL=warn NIXERY_MANIFEST_RATE=0 build/nixery run > "$work/gcs-instance.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gcs_instance_port/v2/" >/dev/null && break; sleep 0.1; done
mkdir -p "$work/static/root/v2/small/manifests"
curl -sf -H "$accept" "http://127.0.0.1:$gcs_instance_port/v2/small/manifests/latest" \
  -o "$work/static/root/v2/small/manifests/latest" || {
  echo "the image did not build on GCS:"; cat "$work/gcs-instance.log"; exit 1; }

# The same on S3: s3rver, if the integration tests installed it (they fetch
# it from npm); the same image gives the same manifest, the yardstick's.
s3rver=build/npm/node_modules/.bin/s3rver
s3_instance_port=""
if [ -x "$s3rver" ]; then
  s3_port=$(free_port)
  s3_instance_port=$(free_port)
  NODE_OPTIONS=--openssl-legacy-provider "$s3rver" -d "$work/s3" -a 127.0.0.1 -p "$s3_port" \
    --configure-bucket bench > "$work/s3rver.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$s3_port/" >/dev/null && break; sleep 0.1; done
  NIX_CONFIG='substituters =' PORT=$s3_instance_port NIXERY_STORAGE_BACKEND=s3 S3_BUCKET=bench \
    S3_ENDPOINT=http://127.0.0.1:$s3_port S3_PATH_STYLE=true S3_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER NIXERY_STATE_DIR=$work/s3-state \
    NIXERY_PKGS_PATH=$work/pkgs NIXERY_LOG_LEVEL=warn NIXERY_MANIFEST_RATE=0 build/nixery run \
    > "$work/s3-instance.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$s3_instance_port/v2/" >/dev/null && break; sleep 0.1; done
  curl -sf -H "$accept" "http://127.0.0.1:$s3_instance_port/v2/small/manifests/latest" \
    -o "$work/s3-manifest.json" || {
    echo "the image did not build on S3:"; cat "$work/s3-instance.log"; exit 1; }
  cmp -s "$work/s3-manifest.json" "$work/static/root/v2/small/manifests/latest" || {
    echo "S3 and GCS gave different manifests for the same image"; exit 1; }
else
  echo "no s3rver under build/npm (the integration tests install it from npm): S3 not measured" >&2
fi

ours="http://127.0.0.1:$port/v2/big/small"
static="http://127.0.0.1:$static_port/v2/big/small"
kinds=()
for kind in "manifest by tag|GET|manifests/latest" "manifest by tag, HEAD|HEAD|manifests/latest" \
            "manifest by digest|GET|manifests/$manifest_digest" \
            "blob of $small_size bytes|GET|blobs/$small" "blob of $big_size bytes|GET|blobs/$big"; do
  IFS='|' read -r name method path <<<"$kind"
  kinds+=("$name|$method|$ours/$path|$static/$path")
done
gcs_tag="http://127.0.0.1:$gcs_instance_port/v2/small/manifests/latest"
static_tag="http://127.0.0.1:$static_port/v2/small/manifests/latest"
kinds+=("GCS: manifest by tag|GET|$gcs_tag|$static_tag" "GCS: manifest by tag, HEAD|HEAD|$gcs_tag|$static_tag")
if [ -n "$s3_instance_port" ]; then
  s3_tag="http://127.0.0.1:$s3_instance_port/v2/small/manifests/latest"
  kinds+=("S3: manifest by tag|GET|$s3_tag|$static_tag" "S3: manifest by tag, HEAD|HEAD|$s3_tag|$static_tag")
fi
if [ -n "$pattern" ]; then
  chosen=()
  for kind in "${kinds[@]}"; do
    [[ ${kind%%|*} =~ $pattern ]] && chosen+=("$kind")
  done
  kinds=("${chosen[@]}")
fi
# Every URL once before measuring: the pool's first answers (a blob's
# link, the manifest cache) are not what is measured.
for kind in "${kinds[@]}"; do
  IFS='|' read -r _ method url _ <<<"$kind"
  if [ "$method" = HEAD ]; then head=(--head); else head=(); fi
  curl -sf "${head[@]}" -H "$accept" "$url" -o /dev/null
done

# wrk 4.1 cannot read answers to HEAD (it waits for the body the
# Content-Length announces), so HEADs are ApacheBench's (-i), on both sides
# alike; it runs in one thread.
rate() { # METHOD URL: requests per second
  if [ "$1" = HEAD ]; then
    ab -q -k -i -c"$connections" -t"$seconds" -n 100000000 -H "$accept" "$2" |
      awk '/^Requests per second/ { print $4 }'
  else
    wrk -t2 -c"$connections" -d"${seconds}s" -H "$accept" "$2" | awk '/^Requests\/sec/ { print $2 }'
  fi
}
declare -A ours_rates static_rates
for round in $(seq $rounds); do
  # ours, static, static, ours; the reverse in even rounds. Each round is
  # symmetric, so neither a trend in the machine's load nor going first
  # (after another kind's runs) favours one side, whatever the number of
  # rounds; plain alternation let ours go first in two rounds of three.
  if [ $((round % 2)) = 1 ]; then order="ours static static ours"; else order="static ours ours static"; fi
  for i in "${!kinds[@]}"; do
    IFS='|' read -r _ method url static_url <<<"${kinds[$i]}"
    for side in $order; do
      if [ $side = ours ]; then
        ours_rates[$i]+="$(rate "$method" "$url") "
      else
        static_rates[$i]+="$(rate "$method" "$static_url") "
      fi
    done
  done
  echo "round $round of $rounds done" >&2
  for i in "${!kinds[@]}"; do
    echo "  ${kinds[$i]%%|*}: ours ${ours_rates[$i]}/ static ${static_rates[$i]}" >&2
  done
done

median() {
  tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }'
}
echo "wrk -t2 (HEAD: ab) -c$connections -d${seconds}s, median of $((2 * rounds)) runs per side in $rounds rounds (ours static static ours, reversed every other round); nginx $(nginx -v 2>&1 | sed 's|.*/||'), 2 workers each"
printf '%-32s %12s %12s %7s\n' "request" "ours req/s" "static req/s" "ratio"
for i in "${!kinds[@]}"; do
  IFS='|' read -r name _ _ _ <<<"${kinds[$i]}"
  o=$(median <<<"${ours_rates[$i]}")
  s=$(median <<<"${static_rates[$i]}")
  printf '%-32s %12.0f %12.0f %7.2f\n' "$name" "$o" "$s" "$(echo "$o $s" | awk '{ print $1 / $2 }')"
done
