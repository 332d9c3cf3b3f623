"""What NIX_TIMEOUT bounds (issue 15, section 1): each builder and each
evaluation, not downloads. An output a binary cache takes longer than
NIX_TIMEOUT to send still arrives; a builder that runs longer fails and
says so (test_failures.test_timeout_says_so)."""

import functools
import http.server
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

from harness import SANDBOX, Instance, TestCase, base_environment, make_package_set, run

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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SubstitutionTest(TestCase):
    def test_a_download_longer_than_nix_timeout_succeeds(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-subst-"))
        self.addCleanup(shutil.rmtree, work, True)
        salt = "%016x" % random.getrandbits(64)
        pkgs = make_package_set(work, salt=salt)

        # Build `cached` once where it can be built (its marker exists),
        # put it in a binary cache, and take it out of the store again.
        marker = Path("/tmp/nixery-seed-" + salt)
        marker.write_text("")
        env = base_environment()
        env["NIX_CONFIG"] = "substituters =\nsandbox = false\n"
        try:
            out = run(["nix-build", "--no-out-link", str(pkgs), "-A", "cached"], env=env).stdout.decode().strip()
        finally:
            marker.unlink()
        cache = work / "cache"
        run(NIX + ["copy", "--to", "file://%s" % cache, out], env=env)
        run(["nix-store", "--delete", out], env=env)
        self.assertFalse(Path(out).exists())

        server = SlowCache(cache, nar_seconds=8)
        self.addCleanup(server.close)
        config = "substituters = %s\nrequire-sigs = false\n" % server.url
        config += "sandbox = true\n" if SANDBOX else ""
        with Instance(package_set=pkgs, NIX_TIMEOUT=3, NIX_CONFIG=config) as inst:
            started = time.time()
            r = inst.manifest("cached")
            self.assertEqual(r.status, 200, r)
            self.assertGreater(time.time() - started, 3 * 2)
            self.assertEqual(len(server.server.nars_sent), 1, server.server.requests)
            self.assertTrue(Path(out).exists())
