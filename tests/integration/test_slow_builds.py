"""Slow builds (the `pause.sN.vK` packages take N seconds): response headers
before clients give up, builds as queued jobs that never starve serving,
abandoned pulls that cost nothing, and the queue's limit."""

import hashlib
import http.client
import os
import random
import signal
import socket
import statistics
import threading
import time

from harness import NIXERY, Instance, Response, TestCase, keep_dirs, run, wait_for

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def fresh_salt():
    return "%016x" % random.getrandbits(64)


def impatient(inst, method, path, header_timeout=5):
    """A client like containerd: gives up when the response headers have not
    come within `header_timeout` seconds; then reads the body for as long as
    it takes. A cut transfer raises (http.client.IncompleteRead)."""
    conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=header_timeout)
    try:
        started = time.time()
        conn.request(method, path)
        r = conn.getresponse()
        headers_after = time.time() - started
        conn.sock.settimeout(120)
        body = r.read()
        return Response(r.status, r.getheaders(), body), headers_after
    finally:
        conn.close()


def hanging_client(inst, path):
    """A socket that sent a GET and waits (or hangs up when closed)."""
    s = socket.create_connection(("127.0.0.1", inst.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    return s


def in_background(fn):
    out = {}
    def run():
        try:
            out["result"] = fn()
        except Exception as e:  # checked by the caller
            out["result"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


class HeaderDeadlineTest(TestCase):
    """NIXERY_HEADER_DEADLINE=2 against a client that waits 5 s for headers."""

    def test_headers_come_before_the_client_gives_up(self):
        with Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=2) as inst:
            path = "/v2/pause.s12.v0/manifests/latest"
            # containerd asks with HEAD first...
            head, after = impatient(inst, "HEAD", path)
            self.assertEqual(head.status, 200, head)
            self.assertLess(after, 5)
            self.assertEqual(head.header("Content-Type"), DOCKER_MANIFEST)
            self.assertIsNone(head.header("Docker-Content-Digest"))
            self.assertIsNone(head.header("Content-Length"))
            # The early headers are a registry's answer by tag all the same.
            self.assertEqual(head.header("Vary"), "Accept")
            self.assertEqual(head.header("Docker-Distribution-API-Version"), "registry/2.0")
            # ...and, without a digest, GETs the body while the build runs on.
            get, after = impatient(inst, "GET", path)
            self.assertEqual(get.status, 200, get)
            self.assertLess(after, 5)
            self.assertEqual(get.header("Content-Type"), DOCKER_MANIFEST)
            self.assertIsNone(get.header("Docker-Content-Digest"))
            self.assertEqual(get.header("Vary"), "Accept")
            manifest = get.json()
            self.assertGreater(len(manifest["layers"]), 0)
            digest = "sha256:" + hashlib.sha256(get.body).hexdigest()
            by_digest = inst.get("/v2/pause.s12.v0/manifests/" + digest)
            self.assertEqual(by_digest.status, 200, by_digest)
            self.assertEqual(by_digest.body, get.body)
            # HEAD and GET waited on one build.
            self.assertEqual(len(inst.builds("pause.s12.v0")), 1)
            # Answered before the deadline: the full headers, as ever.
            again = inst.head(path)
            self.assertEqual(again.header("Docker-Content-Digest"), digest)
            self.assertEqual(again.header("Content-Length"), str(len(get.body)))

    def test_a_failure_after_the_headers_cuts_the_transfer(self):
        with Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=2) as inst:
            path = "/v2/pausefail.s8.v0/manifests/latest"
            with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
                impatient(inst, "GET", path)
            # The failure is remembered: the retry gets it, with Nix's words.
            retry, after = impatient(inst, "GET", path)
            self.assertLess(after, 5)
            self.assertRegistryError(retry, 404, "MANIFEST_UNKNOWN", "this slow package fails on purpose")
            self.assertEqual(len(inst.builds("pausefail.s8.v0")), 1)


class BuildQueueTest(TestCase):
    def test_queue_limit_answers_429_and_metrics_show_the_queue(self):
        with Instance(salt=fresh_salt(), NIXERY_MAX_BUILDS=1, NIXERY_MAX_QUEUED_BUILDS=1,
                      NIXERY_HEADER_DEADLINE=60) as inst:
            first, first_out = in_background(lambda: inst.manifest("pause.s6.v1"))
            wait_for(lambda: inst.metric("nixery_builds_running") == 1, 30, "the first build")
            second, second_out = in_background(lambda: inst.manifest("pause.s6.v2"))
            wait_for(lambda: inst.metric("nixery_builds_queued") == 1, 30, "the second build to queue")
            self.assertEqual(inst.metric("nixery_builds_running"), 1)
            self.assertEqual(inst.metric("nixery_requests_waiting"), 2)

            refused = inst.manifest("pause.s6.v3")
            self.assertRegistryError(refused, 429, "TOOMANYREQUESTS")
            self.assertIsNotNone(refused.header("Retry-After"))
            # Joining a queued build is no new build: not refused.
            joined, joined_out = in_background(lambda: inst.manifest("pause.s6.v2"))

            for t in (first, second, joined):
                t.join()
            for out in (first_out, second_out, joined_out):
                self.assertEqual(getattr(out["result"], "status", out["result"]), 200, out["result"])
            self.assertEqual(inst.metric("nixery_builds_queued"), 0)
            self.assertEqual(inst.metric("nixery_requests_waiting"), 0)
            self.assertEqual(inst.metric("nixery_build_queue_wait_seconds_count"), 2)
            self.assertEqual(inst.metric("nixery_builds_total"), 2)

    def test_abandoned_pulls_cost_no_builds(self):
        max_builds = 2
        with Instance(salt=fresh_salt(), NIXERY_MAX_BUILDS=max_builds) as inst:
            clients = [hanging_client(inst, "/v2/pause.s3.v%d/manifests/latest" % k) for k in range(40)]
            time.sleep(0.2)
            for c in clients:
                c.close()
            wait_for(lambda: inst.metric("nixery_builds_running") == 0
                     and inst.metric("nixery_builds_queued") == 0, 60, "the queue to empty")
            builds = inst.metric("nixery_builds_total")
            print("\n[abandonment] 40 clients hung up: %d builds started (NIXERY_MAX_BUILDS=%d)"
                  % (builds, max_builds))
            self.assertLessEqual(builds, max_builds + 2)
            self.assertEqual(inst.metric("nixery_requests_waiting"), 0)

    def test_builds_in_flight_never_hold_up_cached_pulls(self):
        with Instance(salt=fresh_salt()) as inst:
            cached = inst.manifest("app-a")
            self.assertEqual(cached.status, 200)
            layer = cached.json()["layers"][0]["digest"]
            clients = [hanging_client(inst, "/v2/pause.s8.v%d/manifests/latest" % k) for k in range(24)]
            try:
                wait_for(lambda: inst.metric("nixery_requests_waiting") == 24, 30, "24 waiting pulls")
                manifest_times, blob_times = [], []
                for _ in range(20):
                    started = time.time()
                    self.assertEqual(inst.manifest("app-a").status, 200)
                    manifest_times.append(time.time() - started)
                    started = time.time()
                    self.assertEqual(inst.get("/v2/app-a/blobs/" + layer).status, 200)
                    blob_times.append(time.time() - started)
                print("\n[starvation] 24 slow builds in flight: cached manifest p50 %.1f ms p99 %.1f ms, "
                      "blob p50 %.1f ms p99 %.1f ms" % (
                          1000 * statistics.median(manifest_times), 1000 * percentile(manifest_times, 99),
                          1000 * statistics.median(blob_times), 1000 * percentile(blob_times, 99)))
                self.assertLess(max(manifest_times), 1.0)
                self.assertLess(max(blob_times), 1.0)
            finally:
                for c in clients:
                    c.close()
            wait_for(lambda: inst.metric("nixery_builds_queued") == 0, 30, "the queue to empty")


class DrainTest(TestCase):
    def test_a_draining_pool_answers_at_once_and_starts_no_build(self):
        # Before, a worker stopped accepting at SIGTERM and drained for as
        # long as its builds took: every request nginx passed to the pool
        # meanwhile (/v2/, a first blob, a manifest not in nginx's cache,
        # the retry a "restarting" 503 asks for) waited in the socket's
        # backlog until the last build ended.
        inst = Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=2,
                        expected_errors=["the worker pool exited"]).start()
        try:
            config = inst.manifest("app-a").json()["config"]["digest"]
            pull, pulled = in_background(lambda: inst.manifest("pause.s12.v5"))
            wait_for(lambda: inst.metric("nixery_builds_running") == 1, 30, "the build")
            time.sleep(2.5)  # its headers are out: the pull waits through the drain
            os.kill(inst.pool_pid(), signal.SIGTERM)
            wait_for(lambda: "worker draining" in inst.log_text(), 10, "the drain")
            started = time.time()
            self.assertEqual(inst.get("/v2/", timeout=5).status, 200)
            self.assertEqual(inst.get("/v2/app-a/blobs/" + config, timeout=5).status, 200)
            refused = inst.get("/v2/pause.s12.v6/manifests/latest", timeout=5)
            self.assertRegistryError(refused, 503, "UNAVAILABLE", "restarting")
            self.assertIsNotNone(refused.header("Retry-After"))
            self.assertLess(time.time() - started, 5)
            pull.join()
            self.assertEqual(getattr(pulled["result"], "status", pulled["result"]), 200)
            self.assertEqual(inst.process.wait(60), 1)  # nixery run ends with its pool
            self.assertEqual(inst.builds("pause.s12.v6"), [])
        finally:
            inst.stop()
            inst.check_logs()
            if not keep_dirs():
                run(["rm", "-rf", str(inst.dir)])


class PrebuildTest(TestCase):
    def test_prebuilt_images_are_served_without_a_build(self):
        with Instance(salt=fresh_salt()) as inst:
            out = run([str(NIXERY), "prebuild", "pause.s1.v0/app-b", "app-c:latest"], env=inst.env).stdout.decode()
            lines = out.splitlines()
            self.assertEqual(len(lines), 2, out)
            self.assertTrue(lines[0].startswith("ready pause.s1.v0/app-b:latest sha256:"), out)
            digest = lines[0].split()[-1]
            builds = inst.builds("pause.s1.v0/app-b")
            self.assertEqual(len(builds), 1, builds)
            r = inst.manifest("pause.s1.v0/app-b")
            self.assertEqual(r.header("Docker-Content-Digest"), digest)
            self.assertEqual(len(inst.builds("pause.s1.v0/app-b")), 1, "the pull built it again")
            # Built already: said so, not built again.
            again = run([str(NIXERY), "prebuild", "app-c"], env=inst.env).stdout.decode()
            self.assertTrue(again.startswith("ready app-c:latest sha256:"), again)
            self.assertEqual(len(inst.builds("app-c")), 1)
            failed = run([str(NIXERY), "prebuild", "nosuchpackage"], env=inst.env, check=False)
            self.assertEqual(failed.returncode, 1)
            self.assertIn(b"nosuchpackage", failed.stdout)
            bad = run([str(NIXERY), "prebuild", "Bad Name"], env=inst.env, check=False)
            self.assertEqual(bad.returncode, 2)
