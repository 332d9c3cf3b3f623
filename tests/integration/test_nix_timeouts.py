"""What NIX_TIMEOUT bounds (issue 15, section 1): each builder and each
evaluation, not downloads. An output a binary cache takes longer than
NIX_TIMEOUT to send still arrives; a builder that runs longer fails and
says so (test_failures.test_timeout_says_so). A binary cache that breaks
off a download is the server's passing trouble, not the image's."""

import functools
import http.server
import random
import shutil
import socket
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import SANDBOX, Instance, TestCase, base_environment, have, make_package_set, run

NIX = ["nix", "--extra-experimental-features", "nix-command"]


class SlowCacheHandler(http.server.SimpleHTTPRequestHandler):
    """A binary cache that sends NARs in small pieces, never stalling but
    taking `server.nar_seconds` for each."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if not self.path.startswith("/nar/"):
            return super().do_GET()
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        if self.server.broken:
            # Half a NAR, then the connection drops: a cache in trouble.
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-nix-nar")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        pieces = 20
        step = max(1, len(data) // pieces + 1)
        for i in range(0, len(data), step):
            time.sleep(self.server.nar_seconds / pieces)
            if i + step >= len(data):
                self.server.nars_sent.append(self.path)  # before the client can have it all
            self.wfile.write(data[i:i + step])
            self.wfile.flush()


class SlowCache:
    def __init__(self, directory, nar_seconds):
        handler = functools.partial(SlowCacheHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.requests = []
        self.server.nars_sent = []
        self.server.nar_seconds = nar_seconds
        self.server.broken = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def seeded_cache(test, nar_seconds):
    """A test package set and a binary cache on loopback that has its
    `evaluation.cached`, which this store then has not and cannot build:
    (package set, cache, the output's store path)."""
    work = Path(tempfile.mkdtemp(prefix="nixery-subst-"))
    test.addCleanup(shutil.rmtree, work, True)
    salt = "%016x" % random.getrandbits(64)
    pkgs = make_package_set(work, salt=salt)
    # Build `cached` once where it can be built (its marker exists),
    # put it in a binary cache, and take it out of the store again.
    marker = Path("/tmp/nixery-seed-" + salt)
    marker.write_text("")
    env = base_environment()
    env["NIX_CONFIG"] = "substituters =\nsandbox = false\n"
    try:
        out = run(["nix-build", "--no-out-link", str(pkgs), "-A", "evaluation.cached"], env=env).stdout.decode().strip()
    finally:
        marker.unlink()
    cache = work / "cache"
    run(NIX + ["copy", "--to", "file://%s" % cache, out], env=env)
    run(["nix-store", "--delete", out], env=env)
    test.assertFalse(Path(out).exists())
    server = SlowCache(cache, nar_seconds=nar_seconds)
    test.addCleanup(server.close)
    return pkgs, server, out


def substituting_from(server):
    config = "substituters = %s\nrequire-sigs = false\n" % server.url
    return config + ("sandbox = true\n" if SANDBOX else "")


class SubstitutionTest(TestCase):
    def test_a_download_longer_than_nix_timeout_succeeds(self):
        pkgs, server, out = seeded_cache(self, nar_seconds=8)
        with Instance(package_set=pkgs, NIX_TIMEOUT=3, NIX_CONFIG=substituting_from(server)) as inst:
            started = time.time()
            r = inst.manifest("evaluation.cached")
            self.assertEqual(r.status, 200, r)
            self.assertGreater(time.time() - started, 3 * 2)
            self.assertEqual(len(server.server.nars_sent), 1, server.server.requests)
            self.assertTrue(Path(out).exists())

    def test_a_cache_that_breaks_off_a_download_is_a_503_not_remembered(self):
        pkgs, server, out = seeded_cache(self, nar_seconds=0)
        server.server.broken = True
        with Instance(package_set=pkgs, NIX_CONFIG=substituting_from(server),
                      expected_errors=["download failed"]) as inst:
            r = inst.manifest("evaluation.cached")
            err = self.assertRegistryError(r, 503, "UNAVAILABLE", "a download failed on the network",
                                           "retry later", "networking issues")
            self.assertIn("unable to download", err["detail"]["log"])
            self.assertNotIn(str(inst.package_set), r.body.decode())
            # The cache is well again: the next pull gets the image.
            server.server.broken = False
            r = inst.manifest("evaluation.cached")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(Path(out).exists())


class BuildTimeoutTest(TestCase):
    def test_a_whole_build_is_bounded_by_nixery_build_timeout(self):
        with Instance(NIX_TIMEOUT=60, NIXERY_BUILD_TIMEOUT=4) as inst:
            started = time.time()
            r = inst.manifest("sleepy")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out",
                                           "NIXERY_BUILD_TIMEOUT (4 s)")
            self.assertEqual(err["detail"]["limit"], "NIXERY_BUILD_TIMEOUT")
            self.assertLess(time.time() - started, 30)


@unittest.skipUnless(have("git"), "git is needed")
class BackgroundFetchTest(TestCase):
    def test_a_slow_first_fetch_runs_in_the_background(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-slowgit-"))
        self.addCleanup(shutil.rmtree, work, True)
        repo = make_package_set(work)
        (repo / "stamp.nix").write_text('"fetched-slowly"\n')
        git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(repo)]
        run(git + ["init", "-q"])
        run(git + ["add", "-A"])
        run(git + ["commit", "-q", "-m", "slow"])
        commit = run(git + ["rev-parse", "HEAD"]).stdout.decode().strip()
        # An ssh that takes 8 s to connect, reporting as it goes, then runs
        # the command git asked for here.
        calls = work / "ssh-calls"
        ssh = work / "slow-ssh"
        ssh.write_text("#!/bin/sh\n"
                       "[ \"$1\" = -G ] && exit 0  # git asking which ssh this is\n"
                       "for last; do :; done\n"
                       "echo \"$last\" >> '%s'\n"
                       "i=0; while [ $i -lt 8 ]; do echo 'slow-ssh: connecting' >&2; sleep 1; i=$((i+1)); done\n"
                       "exec sh -c \"$last\"\n" % calls)
        ssh.chmod(0o755)
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO="ssh://git.example.invalid%s" % repo,
                      GIT_SSH_COMMAND=str(ssh), NIX_TIMEOUT=3) as inst:
            started = time.time()
            r = inst.manifest("stamp", commit)
            self.assertRegistryError(r, 503, "UNAVAILABLE", "being fetched", "git.example.invalid")
            self.assertEqual(r.header("Retry-After"), "30")
            self.assertLess(time.time() - started, 8)
            # The fetch goes on without the request; a later pull finds it done.
            while time.time() - started < 60:
                r = inst.manifest("stamp", commit)
                if r.status != 503:
                    break
                time.sleep(1)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(calls.read_text().splitlines()), 1, "one fetch, not one per request")
            # The commit is in the store, rooted; the next image needs no git.
            self.assertEqual(inst.manifest("hello", commit).status, 200)
            self.assertEqual(len(calls.read_text().splitlines()), 1)
