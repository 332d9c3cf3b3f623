"""Popularity data: `nixery popcount` computes it for a package set, and
NIX_POPULARITY_URL feeds it to the layering of the service."""

import bz2
import gzip
import hashlib
import http.server
import json
import lzma
import os
import pty
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness import (NIXERY, Instance, TestCase, base_environment, interrupted, make_package_set, run,
                     running_with, wait_for)
from test_slow_builds import fresh_salt


class PopcountTest(TestCase):
    def test_counts_of_the_test_package_set(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = base_environment()
            env.update({"NIXERY_PKGS_PATH": str(make_package_set(tmp)), "NIX_TIMEOUT": "8"})
            output = Path(tmp) / "popularity.json"
            r = subprocess.run([str(NIXERY), "popcount", "--output", str(output)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr)
            counts = json.loads(output.read_text())
            # By hand from tests/pkgs: libgreet is used by app-a, app-b, app-c,
            # _7zip, helloWorld and noarm (xorg.xev is not top-level); the busybox
            # shell by those six plus stamp, slow, oddnames, whichsystem and twins;
            # the busybox binary by all of those through the shell, by the shell
            # itself, and by the demo's bash, moreutils, nano, hello and figlet scripts.
            self.assertEqual(counts, {"libgreet-1.0": 6, "busybox-static": 11, "busybox": 17})
            # broken and injects fail, sleepy and slownoarm outlive NIX_TIMEOUT:
            # all skipped, said so.
            self.assertIn(b"4 failed to build", r.stderr)

    def test_ctrl_c_stops_nix_s_builders_and_writes_nothing(self):
        # As `nixery build` does: the first SIGINT stops Nix, which stops
        # its builders (sleepy's would run 10 minutes), and nothing is written.
        salt = fresh_salt()
        marker = ("sleepy-" + salt).encode()
        with tempfile.TemporaryDirectory() as tmp:
            env = base_environment()
            env.update({"NIXERY_PKGS_PATH": str(make_package_set(tmp, salt)), "NIX_TIMEOUT": "900"})
            output = Path(tmp) / "popularity.json"
            code, out, err, _ = interrupted([NIXERY, "popcount", "--output", output], env,
                                            lambda: running_with(marker), cwd=tmp, within=300)
            self.assertEqual(code, 130, err)
            self.assertIn(b"nixery popcount: stopped by SIGINT; nothing written", err)
            wait_for(lambda: not running_with(marker), 5, "the builder to stop with the command")
            self.assertEqual(out, b"")
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()), ["pkgs"])


HASH_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"


def zstd_compress(data):
    """Nix's narinfo-compression can be zstd; Python has no zstd module."""
    return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def generated_channel(directory, paths=4000, packages=2500, missing=40, seed=15):
    """A channel's store-paths.xz and a binary cache's narinfo files for a
    generated package set: `paths` store paths, each referencing a few
    earlier ones (so the graph is a DAG, as Nix's is); the first `packages`
    are the channel's jobs, the rest reachable through references only, and
    `missing` of those have no narinfo in the cache. Returns the expected
    popularity counts, how many narinfo files the closures of the listed
    paths take, and how many of those the cache does not have."""
    rng = random.Random(seed)
    base = []
    for i in range(paths):
        h = hashlib.sha256(b"path %d" % i).digest()
        name = "lib%d-%d.%d" % (i % 700, rng.randrange(3), i % 5)  # names repeat across paths
        base.append("".join(HASH_ALPHABET[b % 32] for b in h) + "-" + name)
    # Later paths are referenced by earlier ones: dependencies come last.
    refs = {i: sorted(set(rng.randrange(i + 1, paths) for _ in range(rng.randrange(4))))
            if i + 1 < paths else [] for i in range(paths)}
    no_narinfo = set(rng.sample(range(packages, paths), missing))
    cache = Path(directory) / "cache"
    cache.mkdir()
    for i in range(paths):
        if i in no_narinfo:
            continue
        (cache / (base[i][:32] + ".narinfo")).write_text(
            "StorePath: /nix/store/%s\nURL: nar/%s.nar.xz\nCompression: xz\n"
            "NarHash: sha256:%s\nNarSize: %d\nReferences: %s\n" % (
                base[i], base[i][:32], (base[i][:32] * 2)[:52], 1000 + i,
                " ".join([base[i]] + [base[r] for r in refs[i]])))
    listed = [base[i] for i in range(packages)]
    with lzma.open(Path(directory) / "store-paths.xz", "wt") as f:
        f.write("".join("/nix/store/%s\n" % b for b in listed))

    counts, reachable = {}, set(range(packages))
    for i in range(packages):
        seen, stack = set(), [i]
        while stack:
            v = stack.pop()
            if v in no_narinfo:
                continue
            for r in refs[v]:
                if r not in seen:
                    seen.add(r)
                    stack.append(r)
        reachable |= seen
        own = base[i][33:]
        for n in set(base[r][33:] for r in seen) - {own}:
            counts[n] = counts.get(n, 0) + 1
    return counts, len(reachable), len(reachable & no_narinfo)


class CacheServer:
    """Serves a directory on a loopback port and records the paths asked for."""

    def __init__(self, directory):
        requests, self.narinfo_seen = [], threading.Semaphore(0)
        self.requests = requests
        # (narinfo file name, seconds): answered 429 with Retry-After for
        # that long after it is first asked for.
        self.throttled = None
        # When set, a narinfo is answered with a redirect to a copy that
        # comes compressed with the Content-Encoding this function picks
        # for its file name (None: as it is).
        self.moved_encoding = None
        throttled_since = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                if self.path.endswith(".narinfo"):
                    outer.narinfo_seen.release()
                if outer.moved_encoding and self.path.endswith(".narinfo"):
                    if not self.path.startswith("/moved/"):
                        self.send_response(302)
                        self.send_header("Location", "/moved" + self.path)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    try:
                        body = (Path(directory) / self.path[len("/moved/"):]).read_bytes()
                    except FileNotFoundError:
                        self.send_error(404)
                        return
                    encoding = outer.moved_encoding(self.path.rsplit("/", 1)[1])
                    compress = {None: lambda b: b, "xz": lzma.compress, "gzip": gzip.compress,
                                "bzip2": bz2.compress, "zstd": zstd_compress,
                                "br": lambda b: b"\x0b\x02\x80" + b}
                    body = compress[encoding](body)
                    self.send_response(200)
                    if encoding:
                        self.send_header("Content-Encoding", encoding)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if outer.throttled and self.path.endswith("/" + outer.throttled[0]):
                    throttled_since.append(time.time())
                    if time.time() - throttled_since[0] < outer.throttled[1]:
                        self.send_response(429)
                        self.send_header("Retry-After", str(outer.throttled[1]))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                super().do_GET()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client killed on purpose

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def narinfo_requests(self):
        return [r for r in self.requests if r.endswith(".narinfo")]


class PopcountFromCacheTest(TestCase):
    """`nixery popcount --store-paths URL --cache URL`, as for nixpkgs: a
    channel's list of store paths and the cache's narinfo references."""

    def popcount(self, server, tmp, *extra, stderr=subprocess.PIPE):
        return subprocess.Popen(
            [str(NIXERY), "popcount", "--store-paths", server.url + "/store-paths.xz",
             "--cache", server.url + "/cache/", "--output", str(Path(tmp) / "popularity.json")]
            + list(extra), env=base_environment(), stdout=subprocess.PIPE, stderr=stderr)

    def popcount_on_a_terminal(self, tmp):
        """Runs popcount (one job) with a terminal as its stderr: its exit
        status and everything it wrote there."""
        master, slave = pty.openpty()
        output = []
        with CacheServer(tmp) as server:
            p = self.popcount(server, tmp, "--jobs", "1", stderr=slave)
            os.close(slave)
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's last writer is gone
                    break
                if not chunk:
                    break
                output.append(chunk)
            p.wait(timeout=120)
            os.close(master)
        return p.returncode, b"".join(output)

    def test_counts_match_the_generated_closures(self):
        with tempfile.TemporaryDirectory() as tmp:
            expected, asked_for, not_cached = generated_channel(tmp)
            with CacheServer(tmp) as server:
                p = self.popcount(server, tmp)
                _, err = p.communicate(timeout=300)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(json.loads((Path(tmp) / "popularity.json").read_text()), expected)
                # Each narinfo once (the missing ones included), nothing else but the list.
                asked = server.narinfo_requests()
                self.assertEqual(len(asked), len(set(asked)))
                self.assertEqual(len(asked), asked_for)
                self.assertEqual(set(server.requests) - set(asked), {"/store-paths.xz"})
                self.assertGreater(not_cached, 0)
                self.assertIn(b"%d not in the cache" % not_cached, err)

    def test_a_cache_that_asks_to_wait_is_waited_for(self):
        # One narinfo is refused with 429 and Retry-After: 2 for 2 s; the
        # run waits as asked instead of giving up after its quick retries.
        with tempfile.TemporaryDirectory() as tmp:
            expected, _, _ = generated_channel(tmp, paths=400, packages=250, missing=4)
            with lzma.open(Path(tmp) / "store-paths.xz", "rt") as f:
                listed = f.read().split()
            narinfo = listed[7][len("/nix/store/"):][:32] + ".narinfo"
            with CacheServer(tmp) as server:
                server.throttled = (narinfo, 2)
                p = self.popcount(server, tmp)
                _, err = p.communicate(timeout=300)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(json.loads((Path(tmp) / "popularity.json").read_text()), expected)
                asked = [r for r in server.requests if r.endswith("/" + narinfo)]
                self.assertGreaterEqual(len(asked), 2)
                self.assertLessEqual(len(asked), 3)  # waited, did not hammer

    def test_narinfo_files_behind_a_redirect_and_compressed(self):
        # A cache behind a redirecting proxy, its narinfo files written with
        # Nix's narinfo-compression: read as Nix reads them.
        with tempfile.TemporaryDirectory() as tmp:
            expected, asked_for, _ = generated_channel(tmp, paths=400, packages=250, missing=4)
            encodings = [None, "xz", "gzip", "bzip2", "zstd"]
            with CacheServer(tmp) as server:
                server.moved_encoding = lambda name: encodings[int(name[:8], 36) % 5]
                p = self.popcount(server, tmp)
                _, err = p.communicate(timeout=300)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(json.loads((Path(tmp) / "popularity.json").read_text()), expected)
                moved = [r for r in server.requests if r.startswith("/moved/")]
                self.assertEqual(len(moved), asked_for)
            # One it cannot decode stops the run, naming the encoding.
            (Path(tmp) / "popularity.json").unlink()
            with CacheServer(tmp) as server:
                server.moved_encoding = lambda name: "br"
                p = self.popcount(server, tmp, "--journal", str(Path(tmp) / "other-journal"))
                _, err = p.communicate(timeout=300)
                self.assertEqual(p.returncode, 1, err)
                self.assertIn(b"Content-Encoding is br", err)

    def test_an_interrupted_run_resumes(self):
        with tempfile.TemporaryDirectory() as tmp:
            expected, asked_for, not_cached = generated_channel(tmp)
            with CacheServer(tmp) as server:
                p = self.popcount(server, tmp, "--jobs", "4")
                for _ in range(1500):
                    self.assertTrue(server.narinfo_seen.acquire(timeout=120))
                p.kill()
                p.communicate()
                first = len(server.narinfo_requests())
                self.assertLess(first, asked_for)
                journal = Path(tmp) / "popularity.json.journal"
                self.assertTrue(journal.exists())
                self.assertFalse((Path(tmp) / "popularity.json").exists())

                p = self.popcount(server, tmp, "--jobs", "4")
                _, err = p.communicate(timeout=300)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(json.loads((Path(tmp) / "popularity.json").read_text()), expected)
                # The second run asks only for what the first had not read
                # (and at most the four in flight when it was killed).
                second = len(server.narinfo_requests()) - first
                self.assertLessEqual(first + second, asked_for + 4)
                self.assertLess(second, asked_for - 1000)

    def test_progress_on_a_terminal(self):
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=2000, packages=1500, missing=5)
            returncode, text = self.popcount_on_a_terminal(tmp)
            self.assertEqual(returncode, 0, text)
            # One line rewritten in place with the counts so far, then a summary.
            self.assertIn(b"\r\x1b[Kreading narinfo files", text)
            self.assertRegex(text, rb"\d+ read, \d+ to go, \d+ not in the cache")
            self.assertIn(b"counted 1500 packages", text)

    def test_an_error_on_a_terminal_starts_its_own_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=2000, packages=1500, missing=5)
            with lzma.open(Path(tmp) / "store-paths.xz", "rt") as f:
                listed = f.read().split()
            narinfo = listed[700][len("/nix/store/"):][:32] + ".narinfo"
            (Path(tmp) / "cache" / narinfo).write_text("not a narinfo\n")
            returncode, text = self.popcount_on_a_terminal(tmp)
            self.assertEqual(returncode, 1, text)
            self.assertIn(b"\r\x1b[Kreading narinfo files", text)
            # The line is cleared before the error, and not drawn over after it.
            self.assertRegex(text, rb"\r\x1b\[Knixery popcount: [^\r]*%s" % narinfo.encode())
            self.assertTrue(text.rstrip().endswith(b"to resume)"), text[-300:])

    def test_a_missing_list_stops_the_run_with_its_cause(self):
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=50, packages=30, missing=0)
            with CacheServer(tmp) as server:
                (Path(tmp) / "store-paths.xz").unlink()
                p = self.popcount(server, tmp)
                _, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 1)
                self.assertIn(b"store-paths.xz", err)
                self.assertIn(b"404", err)

    def test_ctrl_c_stops_at_once_and_writes_no_output(self):
        # No Nix runs; a narinfo fetch may wait a minute on a throttling
        # cache. What was read stays in the journal for the next run.
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=50, packages=30, missing=0)
            with lzma.open(Path(tmp) / "store-paths.xz", "rt") as f:
                narinfo = f.read().split()[7][len("/nix/store/"):][:32] + ".narinfo"
            before = sorted(p.name for p in Path(tmp).iterdir())
            with CacheServer(tmp) as server:
                server.throttled = (narinfo, 60)
                output = Path(tmp) / "popularity.json"
                code, out, err, took = interrupted(
                    [NIXERY, "popcount", "--store-paths", server.url + "/store-paths.xz", "--cache",
                     server.url + "/cache/", "--output", output], base_environment(),
                    lambda: any(r.endswith("/" + narinfo) for r in server.requests))
            self.assertEqual(code, 130, err)
            self.assertIn(b"nixery popcount: stopped by SIGINT; nothing written", err)
            self.assertLess(took, 5)
            self.assertEqual(out, b"")
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()),
                             sorted(before + ["popularity.json.journal"]))

    def test_a_file_cache_is_refused_before_reading_anything(self):
        # As `nix copy --to file://DIR` writes it: the HTTP client cannot
        # read it, and says so before any narinfo file is asked for.
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=5, packages=3, missing=0)
            r = run([str(NIXERY), "popcount", "--store-paths", "file://%s/store-paths.xz" % tmp,
                     "--cache", "file://%s/cache" % tmp, "--output", str(Path(tmp) / "p.json")],
                    env=base_environment(), check=False)
            self.assertEqual(r.returncode, 2, r)  # a usage error, as in every command
            self.assertIn(b"is not an http(s):// URL", r.stderr)
            self.assertFalse((Path(tmp) / "p.json").exists())

    def test_a_list_that_is_no_store_paths_file_fails_and_crlf_lines_count(self):
        with tempfile.TemporaryDirectory() as tmp:
            expected, _, _ = generated_channel(tmp, paths=50, packages=30, missing=0)
            with lzma.open(Path(tmp) / "store-paths.xz", "rt") as f:
                lines = f.read().splitlines()
            (Path(tmp) / "crlf").write_text("".join(line + "\r\n" for line in lines))
            (Path(tmp) / "page.html").write_text("<html><body>Moved</body></html>\n")
            output = Path(tmp) / "popularity.json"
            with CacheServer(tmp) as server:
                def popcount(listing):
                    return subprocess.run(
                        [str(NIXERY), "popcount", "--store-paths", server.url + "/" + listing,
                         "--cache", server.url + "/cache/", "--output", str(output)],
                        env=base_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=120)
                # Saved on Windows, say: the same paths.
                r = popcount("crlf")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(output.read_text()), expected)
                # An error page in place of the list: a failure, not `{}` over good data.
                r = popcount("page.html")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(b"lists no store paths", r.stderr)
                self.assertEqual(json.loads(output.read_text()), expected)

    def test_a_cache_that_has_none_of_the_paths_fails_and_says_so(self):
        with tempfile.TemporaryDirectory() as tmp:
            generated_channel(tmp, paths=50, packages=30, missing=0)
            with CacheServer(tmp) as server:
                r = subprocess.run(
                    [str(NIXERY), "popcount", "--store-paths", server.url + "/store-paths.xz",
                     "--cache", server.url + "/wrong-cache/", "--output",
                     str(Path(tmp) / "popularity.json")],
                    env=base_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    timeout=120)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(b"is --cache right? Remove the journal", r.stderr)
                self.assertFalse((Path(tmp) / "popularity.json").exists())


class PopularityUrlTest(TestCase):
    def layer_paths(self, inst, name):
        """Store path names per layer, from the image's config history."""
        manifest = inst.manifest(name).json()
        config = inst.get("/v2/%s/blobs/%s" % (name, manifest["config"]["digest"])).json()
        return [h["created_by"] for h in config["history"]]

    def test_popular_paths_get_their_own_layer(self):
        with tempfile.TemporaryDirectory() as tmp:
            popular, unrelated = Path(tmp) / "popular.json", Path(tmp) / "unrelated.json"
            popular.write_text(json.dumps({"libgreet-1.0": 1000}))
            unrelated.write_text(json.dumps({"unrelated-1.0": 1000}))
            with Instance(NIX_POPULARITY_URL="file://" + str(unrelated)) as plain, \
                    Instance(NIX_POPULARITY_URL="file://" + str(popular)) as with_popular:
                without = self.layer_paths(plain, "app-a")
                with_data = self.layer_paths(with_popular, "app-a")
                self.assertFalse(any(h == "nixery: libgreet-1.0" for h in without))
                self.assertIn("nixery: libgreet-1.0", with_data)

    def test_a_bumped_version_keeps_the_popularity_of_its_name(self):
        # The data names libgreet-0.9, the package set has libgreet-1.0.
        with tempfile.TemporaryDirectory() as tmp:
            stale = Path(tmp) / "stale.json"
            stale.write_text(json.dumps({"libgreet-0.9": 1000}))
            with Instance(NIX_POPULARITY_URL="file://" + str(stale)) as inst:
                self.assertIn("nixery: libgreet-1.0", self.layer_paths(inst, "app-a"))

    def test_without_data_every_store_path_is_a_layer_when_the_budget_allows(self):
        # auto without data is the size strategy: app-a's closure (app-a,
        # libgreet, the busybox shell and binary, the certificates and
        # iana-etc every image gets) fits the budget, one layer each, plus the
        # top layer; NIXERY_LAYERING=size is the same image, and so is
        # NIXERY_LAYERING=chunks, the strategy's former name.
        with Instance() as auto, Instance(NIXERY_LAYERING="size") as size, \
                Instance(NIXERY_LAYERING="chunks") as chunks:
            history = self.layer_paths(auto, "app-a")
            self.assertEqual(set(history[:-1]), {
                "nixery: app-a", "nixery: libgreet-1.0", "nixery: busybox",
                "nixery: busybox-static", "nixery: nss-cacert-demo", "nixery: iana-etc-20240318"})
            self.assertEqual(auto.manifest("app-a").json()["layers"],
                             size.manifest("app-a").json()["layers"])
            self.assertEqual(size.manifest("app-a").json()["layers"],
                             chunks.manifest("app-a").json()["layers"])

    def test_an_image_of_two_wide_packages_reuses_the_leftover_layer_of_one(self):
        # The size strategy (auto without data): wide.a's closure (itself
        # and 100 files of one size) does not fit 94 layers: alone, 93 of
        # its paths are layers and 8 files (the last by store path, as their
        # sizes tie) one leftover layer. An image with wide.a starts from
        # that leftover (wide.b's, of smaller files, is smaller) and groups
        # the rest in the other 93 layers, so every image with wide.a has
        # the same layer, which a node downloads once.
        with Instance() as inst:
            alone = inst.manifest("wide.a").json()["layers"]
            both = inst.manifest("wide.a/wide.b").json()["layers"]
            self.assertEqual((len(alone), len(both)), (95, 95))  # 94 and the top layer
            history = self.layer_paths(inst, "wide.a")
            both_digests = [layer["digest"] for layer in both]
            shared = [i for i, h in enumerate(history[:-1])
                      if ", " in h and alone[i]["digest"] in both_digests]
            self.assertEqual(len(shared), 1, history)
            self.assertEqual(history[shared[0]].count("wide-a-part-"), 8, history[shared[0]])

    def test_a_start_while_the_data_cannot_be_read_uses_the_last_copy(self):
        # The data's host is down as the machine restarts: the instance
        # still starts, with the layering and cache keys it had.
        with tempfile.TemporaryDirectory() as tmp:
            popular = Path(tmp) / "popular.json"
            popular.write_text(json.dumps({"libgreet-1.0": 1000}))
            inst = Instance(NIX_POPULARITY_URL="file://" + str(popular)).start()
            try:
                before = inst.manifest("app-a").header("Docker-Content-Digest")
            finally:
                self.assertEqual(inst.stop(), 0)
            popular.unlink()
            inst.start()
            try:
                self.assertEqual(inst.manifest("app-a").header("Docker-Content-Digest"), before)
                self.assertIn("nixery: libgreet-1.0", self.layer_paths(inst, "app-a"))
                self.assertEqual(len(inst.builds()), 1)
                self.assertTrue([r for r in inst.log_records() if r.get("msg") ==
                                 "popularity data unavailable; using the copy kept from the last start"])
            finally:
                self.assertEqual(inst.stop(), 0)
            # The copy is of that URL's data: another URL that cannot be read
            # stops the start, as on a first start.
            inst.env["NIX_POPULARITY_URL"] = "file://" + str(Path(tmp) / "other.json")
            inst.expected_errors += ["other.json", "the worker pool did not start"]
            with self.assertRaises(AssertionError) as caught:
                inst.start(timeout=30)
            self.assertIn("other.json", str(caught.exception))
            inst.stop()
            # Data that downloads but does not parse is not kept over the copy.
            inst.env["NIX_POPULARITY_URL"] = "file://" + str(popular)
            popular.write_text("not json")
            inst.start()
            try:
                self.assertEqual(inst.manifest("app-a").header("Docker-Content-Digest"), before)
            finally:
                self.assertEqual(inst.stop(), 0)
            # Once another URL's data is kept, the first URL's copy goes: only
            # the URL set is read back. Other files of the state stay.
            first_copy = sorted(inst.state.glob("popularity-*.json"))
            self.assertEqual(len(first_copy), 1, first_copy)
            (inst.state / "popularity-notes.json").write_text("{}")
            (inst.state / "popularity-0123456789ABCDEF.json").write_text("{}")
            other = Path(tmp) / "other.json"
            other.write_text(json.dumps({"libgreet-1.0": 1000}))
            inst.env["NIX_POPULARITY_URL"] = "file://" + str(other)
            with inst:
                copies = sorted(inst.state.glob("popularity-*.json"))
                self.assertEqual(len(copies), 3, copies)
                self.assertNotIn(first_copy[0], copies)
                self.assertIn(inst.state / "popularity-notes.json", copies)
                self.assertIn(inst.state / "popularity-0123456789ABCDEF.json", copies)

    def assertStartUpFails(self, message_part, **settings):
        inst = Instance(**settings)
        with self.assertRaises(AssertionError) as caught:
            inst.start(timeout=30)
        self.assertIn(message_part, str(caught.exception))
        inst.stop()

    def test_popularity_without_data_stops_start_up(self):
        self.assertStartUpFails("NIX_POPULARITY_URL", NIXERY_LAYERING="popularity")

    def test_unreachable_popularity_data_stops_start_up(self):
        self.assertStartUpFails("/nonexistent/popularity.json",
                                NIX_POPULARITY_URL="file:///nonexistent/popularity.json")
