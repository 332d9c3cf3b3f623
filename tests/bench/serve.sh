#!/usr/bin/env bash
# Serving benchmark: a local instance (nixery run) with the demo package set;
# wrk against a cached manifest (answered by a worker) and a blob (sent by
# nginx after X-Accel-Redirect). Prints wrk's figures.
#   tests/bench/serve.sh [SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)"; exit 1; }
make -s build/nixery
seconds=${1:-10}
work=$(mktemp -d /tmp/nixery-bench-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NIX_CONFIG='substituters =' PORT=$port STORAGE_PATH=$work/storage NIXERY_STATE_DIR=$work/state \
  NIXERY_LOG_LEVEL=warn NIXERY_MANIFEST_RATE=0 build/nixery run > "$work/log" 2>&1 &
pid=$!
trap 'kill $pid; wait $pid; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
manifest="http://127.0.0.1:$port/v2/shell/hello/manifests/latest"
curl -sf "$manifest" -o "$work/manifest.json"   # builds the image once
blob=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(max(m["layers"], key=lambda l: l["size"])["digest"])' "$work/manifest.json")
size=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(max(l["size"] for l in m["layers"]))' "$work/manifest.json")
echo "== cached manifest by tag (FastCGI worker)"
wrk -t2 -c32 -d"${seconds}s" --latency "$manifest" | sed -n '1,/Latency Distribution/p;/99%/p;/Requests\/sec/p'
echo "== blob of $size bytes (nginx via X-Accel-Redirect)"
wrk -t2 -c32 -d"${seconds}s" --latency "http://127.0.0.1:$port/v2/shell/hello/blobs/$blob" | sed -n '1,/Latency Distribution/p;/99%/p;/Requests\/sec/p;/Transfer/p'
