"""Soak: SOAK_SECONDS (default 600) of mixed load on one local instance on
loopback: cached manifests and their blobs, new builds, failing builds and
bad requests, from a few client threads. Prints the requests made, the
failures of valid pulls (must be 0), and each worker's RSS and open file
descriptors at the start and the end (they should stay flat). Exits 1 when a
valid pull failed. Run with `make soak`; not part of `make test`."""

import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Instance  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
THREADS = int(os.environ.get("SOAK_THREADS", "4"))
CACHED = ["hello", "app-a", "app-b", "shell/app-c", "hardlinks"]
PARTS = ["hello", "app-a", "app-b", "app-c", "hardlinks", "libgreet", "xorg.xev", "7zip"]
BAD = ["/v2/UPPER/manifests/latest", "/v2/a/manifests/bad..tag", "/v2/a/blobs/sha256:zz",
       "/v2/a/blobs/sha256:" + "0" * 64, "/v2/_catalog", "/v2/a/../../etc/passwd/manifests/x",
       "/v2/" + "a/" * 200 + "manifests/latest", "/nothing"]


def usage(pid):
    try:
        rss = next(int(l.split()[1]) for l in Path("/proc/%d/status" % pid).read_text().splitlines()
                   if l.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None, None


def main():
    counts = {"requests": 0, "valid_pulls": 0, "valid_failures": 0, "new_builds": 0,
              "failing_builds": 0, "bad_requests": 0}
    lock = threading.Lock()
    failures = []

    with Instance(NIXERY_MANIFEST_RATE=0, expected_errors=["build failed"]) as inst:
        for name in CACHED:
            assert inst.manifest(name).status == 200, name
        # "start" is sampled after a warm-up of a tenth of the run (at most a
        # minute): caches and thread stacks grow once, then stay.
        start = {}
        deadline = time.time() + SECONDS
        warm_up = threading.Timer(min(60, SECONDS / 10),
                                  lambda: start.update({p: usage(p) for p in inst.worker_pids()}))
        warm_up.start()

        def count(key, n=1):
            with lock:
                counts[key] += n

        def client(seed):
            rnd = random.Random(seed)
            while time.time() < deadline:
                kind = rnd.random()
                if kind < 0.6:
                    name = rnd.choice(CACHED)
                    m = inst.manifest(name)
                    count("requests")
                    count("valid_pulls")
                    ok = m.status == 200
                    if ok:
                        for layer in m.json()["layers"][:3]:
                            b = inst.get("/v2/%s/blobs/%s" % (name, layer["digest"]))
                            count("requests")
                            ok = ok and b.status == 200
                    if not ok:
                        count("valid_failures")
                        failures.append((name, m.status, m.body[:200]))
                elif kind < 0.7:
                    name = "/".join(rnd.sample(PARTS, rnd.randint(2, 4)))
                    m = inst.manifest(name)
                    count("requests")
                    count("new_builds")
                    if m.status != 200:
                        count("valid_failures")
                        failures.append((name, m.status, m.body[:200]))
                elif kind < 0.8:
                    name = rnd.choice(["broken", "nosuch-%d" % rnd.randint(0, 10**6), "app-a/nope"])
                    m = inst.manifest(name)
                    count("requests")
                    count("failing_builds")
                    assert m.status in (404, 503), (name, m)
                else:
                    path = rnd.choice(BAD)
                    method = rnd.choice(["GET", "GET", "HEAD", "POST", "DELETE"])
                    r = inst.request(method, path)
                    count("requests")
                    count("bad_requests")
                    assert r.status >= 400, (method, path, r)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        end = {pid: usage(pid) for pid in inst.worker_pids()}

    print("soak: %d s, %d client threads (start: after the warm-up)" % (SECONDS, THREADS))
    for key, value in counts.items():
        print("  %-16s %d" % (key, value))
    print("  %-8s %14s %14s" % ("worker", "RSS KiB start/end", "fds start/end"))
    for pid in sorted(set(start) | set(end)):
        s, e = start.get(pid, (None, None)), end.get(pid, (None, None))
        print("  %-8d %8s/%-8s %6s/%-6s" % (pid, s[0], e[0], s[1], e[1]))
    for f in failures[:10]:
        print("  failed:", f)
    return 1 if counts["valid_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
