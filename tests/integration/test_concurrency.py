"""The worker pool under concurrency and failure: one build for many
identical requests, cached requests flowing during a build, and a worker
killed mid-build."""

import hashlib
import os
import signal
import threading
import time

from collections import Counter

from harness import Instance, TestCase, make_package_set, run, SALT

# It measures how quickly cached requests are answered during a build: run.py
# runs it on its own, not beside other modules.
RUN_ALONE = True


def parallel(n, fn):
    results = [None] * n
    def run(i):
        try:
            results[i] = fn()
        except Exception as e:  # reported by the caller's assertions
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class ConcurrencyTest(TestCase):
    def test_concurrent_identical_pulls_cause_one_build(self):
        with Instance(NIXERY_WORKERS=3) as inst:
            results = parallel(12, lambda: inst.manifest("slow/app-a"))
            for r in results:
                self.assertEqual(getattr(r, "status", r), 200, r)
            self.assertEqual(len({r.header("Docker-Content-Digest") for r in results}), 1)
            builds = inst.builds("slow/app-a")
            self.assertEqual(len(builds), 1, builds)
            packed = inst.packed_layers()
            self.assertEqual(len(packed), len(set(packed)), "a layer was packed twice")

    def test_cached_requests_flow_during_a_long_build(self):
        with Instance(NIXERY_WORKERS=1) as inst:
            cached = inst.manifest("app-a")
            self.assertEqual(cached.status, 200)
            layer = cached.json()["layers"][0]["digest"]
            build = threading.Thread(target=lambda: inst.manifest("slow/hello"))
            build.start()
            time.sleep(1)  # the build is running (it sleeps 4 s)
            started = time.time()
            self.assertEqual(inst.manifest("app-a").status, 200)
            self.assertEqual(inst.get("/v2/app-a/blobs/" + layer).status, 200)
            self.assertLess(time.time() - started, 1.5)
            self.assertTrue(build.is_alive(), "the build should still be running")
            build.join()

    def test_a_crowd_waiting_for_one_build_in_one_worker(self):
        # More requests than a worker keeps waiting (512) wait for one build
        # there, with the descriptors nixery.service allows (LimitNOFILE=1024):
        # the ones it turns away get 429 and leave the job board as they
        # came; the others all get the manifest when the build ends, though
        # they wake together, and none a server error.
        crowd = 530
        with Instance(NIXERY_WORKERS=1, NIXERY_MANIFEST_RATE=0) as inst:
            for pid in [inst.pool_pid()] + inst.worker_pids():
                run(["prlimit", "--pid", str(pid), "--nofile=1024:1024"])
            answers = parallel(crowd, lambda: inst.get("/v2/pause.s12.v61/manifests/latest",
                                                       timeout=300))
            statuses = Counter(getattr(r, "status", repr(r)[:80]) for r in answers)
            self.assertEqual(set(statuses), {200, 429}, statuses)
            self.assertGreaterEqual(statuses[200], 512, statuses)
            for r in answers:
                if r.status == 429:
                    self.assertTrue(r.header("Retry-After"), r)
            self.assertEqual(len({r.header("Docker-Content-Digest") for r in answers
                                  if r.status == 200}), 1)
            deadline = time.time() + 10
            while inst.metric("nixery_requests_waiting") > 0 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(inst.metric("nixery_requests_waiting"), 0,
                             "requests turned away still wait on the job board")
            self.assertEqual(len(inst.builds("pause.s12.v61")), 1)

    def test_worker_killed_mid_build(self):
        with Instance(expected_errors=[]) as inst:
            staging = inst.storage / "staging"
            outcome = {}
            def pull():
                outcome["response"] = inst.manifest("big/app-a")
            client = threading.Thread(target=pull)
            client.start()
            # Wait until the big layer is being packed, then kill every worker.
            deadline = time.time() + 120
            while time.time() < deadline and not any(p.stat().st_size > (1 << 20) for p in staging.glob("*.tmp")):
                time.sleep(0.05)
            self.assertTrue(any(staging.glob("*.tmp")), "packing never started")
            victims = inst.worker_pids()
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            client.join()
            failed = outcome["response"]
            self.assertEqual(failed.status, 503, failed)
            self.assertEqual(failed.json()["errors"][0]["code"], "UNAVAILABLE")

            # The pool replaces its workers and the next pull succeeds.
            deadline = time.time() + 30
            while time.time() < deadline and len(set(inst.worker_pids()) - set(victims)) < 2:
                time.sleep(0.1)
            self.assertEqual(len(set(inst.worker_pids()) - set(victims)), 2)
            r = inst.manifest("big/app-a")
            self.assertEqual(r.status, 200, r)
            for layer in r.json()["layers"]:
                blob = inst.get("/v2/big/blobs/" + layer["digest"])
                self.assertEqual("sha256:" + hashlib.sha256(blob.body).hexdigest(), layer["digest"])
            # No partial file was ever published under a digest name.
            for path in inst.blob_files():
                self.assertEqual(hashlib.sha256(path.read_bytes()).hexdigest(), path.name)
            self.assertTrue(any(r.get("msg") == "worker exited; replacing it" for r in inst.log_records()))
