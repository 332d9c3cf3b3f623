"""A hostile and faulty world: what anonymous clients learn from errors
(no server paths or credentials, a request id that leads to the log), a
master killed with SIGKILL, a builder killed as the OOM killer does, an
unusable database, a Nix daemon that is not there, SIGTERM and nginx
reloads during pulls, and a full disk."""

import concurrent.futures
import functools
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import (ROOT, SALT, Instance, alive, NIXERY, TestCase, base_environment, free_port, have, keep_dirs,
                     make_package_set, running_with, sha256_file)

SECRET = "s3cr3t-T0ken"


class InformationTest(TestCase):
    def assertNoInternals(self, inst, text):
        for private in (str(inst.dir), str(inst.package_set), str(ROOT), SECRET):
            self.assertNotIn(private, text)

    def test_errors_name_packages_not_server_paths(self):
        with Instance() as inst:
            r = inst.manifest("hello/no-such-package-xyz")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", '"no-such-package-xyz"',
                                     "a local package set")
            self.assertNoInternals(inst, r.body.decode())
            # Nix's own message is passed on, without the package set's path.
            r = inst.manifest("broken")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "broken on purpose")
            self.assertNoInternals(inst, r.body.decode())
            page = inst.get("/").body.decode()
            self.assertIn("broken on purpose", page)
            self.assertNoInternals(inst, page)
            # Every answer carries its request id, and so do the log lines.
            rid = r.header("X-Request-Id")
            self.assertRegex(rid, "^[0-9a-f]{16,32}$")
            lines = [x for x in inst.log_records() if x.get("request_id") == rid]
            self.assertTrue(any(x.get("msg") == "request" for x in lines), lines)

    def test_files_beside_the_package_set_are_not_named(self):
        # A package set that imports from beside it, as one importing a
        # nixpkgs checkout from ../nixpkgs does: Nix's error names that
        # file's path, which the client sees as relative to the set.
        work = Path(tempfile.mkdtemp(prefix="nixery-beside-"))
        self.addCleanup(shutil.rmtree, work, True)
        (work / "pkgs").mkdir()
        (work / "beside").mkdir()
        (work / "pkgs" / "default.nix").write_text(
            "{ system ? builtins.currentSystem }: { sibling = import ../beside/bad.nix; }\n")
        (work / "beside" / "bad.nix").write_text("assert 1 == 2; null\n")
        with Instance(package_set=work / "pkgs", expected_errors=["assertion"]) as inst:
            r = inst.manifest("sibling")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "<package set>/../beside/bad.nix")
            self.assertNotIn(str(work), r.body.decode())

    def test_a_server_fault_quotes_the_request_id_the_log_has(self):
        # A Nix daemon that is not there: the client is told so, with the
        # request id; the log has Nix's full message under the same id.
        with Instance(NIX_REMOTE="unix://%s/no-daemon/socket" % tempfile.gettempdir(),
                      expected_errors=["cannot run nix"]) as inst:
            r = inst.manifest("hello")
            err = self.assertRegistryError(r, 503, "UNAVAILABLE", "Nix daemon is not running")
            rid = r.header("X-Request-Id")
            self.assertIn("request id " + rid, err["message"])
            self.assertEqual(err["detail"]["requestId"], rid)
            self.assertNotIn("no-daemon", r.body.decode())
            logged = [x for x in inst.log_records() if x.get("request_id") == rid]
            self.assertTrue(any("no-daemon" in json.dumps(x) for x in logged), logged)
            # Not remembered as the image's failure: a daemon that is back
            # builds it (here: the same answer again, but from Nix again).
            self.assertEqual(inst.manifest("hello").status, 503)
            self.assertEqual(len([x for x in inst.log_records()
                                  if x.get("msg") == "build failed" and x.get("failure") == "cannot run nix"]), 2)

    def check_secret_nowhere(self, inst, responses):
        for r in responses:
            self.assertNotIn(SECRET, r.body.decode(errors="replace"))
            self.assertNotIn(SECRET, json.dumps(r.headers))
        page = inst.get("/")
        self.assertEqual(page.status, 200)
        self.assertNotIn(SECRET, page.body.decode())
        for log in [inst.log_path] + list(inst.state.glob("*.log")):
            self.assertNotIn(SECRET, log.read_text(errors="replace"), log)

    def test_git_url_credentials_appear_nowhere(self):
        closed = free_port()
        url = "http://nixery:%s@127.0.0.1:%d/pkgs.git" % (SECRET, closed)
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=url,
                      expected_errors=["package source unavailable"]) as inst:
            responses = [inst.manifest("hello"), inst.manifest("hello", "v1.0"),
                         inst.manifest("hello", "a" * 40)]
            for r in responses:
                self.assertGreaterEqual(r.status, 400, r)
            self.assertIn("127.0.0.1:%d" % closed, responses[0].body.decode())
            self.check_secret_nowhere(inst, responses)

    def test_channel_url_credentials_appear_nowhere(self):
        closed = free_port()
        url = "http://mirror:%s@127.0.0.1:%d/archive" % (SECRET, closed)
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_CHANNEL="nixos-test", NIXERY_CHANNEL_URL=url,
                      expected_errors=["package source unavailable"]) as inst:
            responses = [inst.manifest("hello")]
            self.assertGreaterEqual(responses[0].status, 400, responses[0])
            self.check_secret_nowhere(inst, responses)

    def test_minimal_start_page(self):
        with Instance(NIXERY_START_PAGE="minimal") as inst:
            self.assertEqual(inst.manifest("app-a").status, 200)
            page = inst.get("/").body.decode()
            self.assertIn("docker pull", page)
            self.assertNotIn("app-a", page)
            self.assertNotIn("Recent build", page)


class FaultTest(TestCase):
    def test_master_killed_takes_its_workers_and_nixery_run_stops(self):
        inst = Instance().start()
        try:
            self.assertEqual(inst.manifest("hello").status, 200)
            master = inst.pool_pid()
            workers = inst.worker_pids()
            self.assertTrue(workers)
            os.kill(master, signal.SIGKILL)
            deadline = time.time() + 2
            while time.time() < deadline and any(alive(w) for w in workers):
                time.sleep(0.05)
            self.assertEqual([w for w in workers if alive(w)], [])
            # nixery run notices and stops nginx too.
            code = inst.process.wait(30)
            self.assertEqual(code, 1)
            self.assertIn("the worker pool exited", inst.log_text())
        finally:
            inst.stop()
            if not keep_dirs():
                subprocess.run(["rm", "-rf", str(inst.dir)])

    def test_master_killed_mid_build_restarts_at_once_and_ends_the_build(self):
        # The workers of a killed master do not wait for their builds (up to
        # NIXERY_BUILD_TIMEOUT): they would hold the socket a restart needs.
        # The build's row, left open, is ended as interrupted at the restart.
        image = "pause.s12.v40"
        inst = Instance().start()
        try:
            pull = threading.Thread(target=lambda: inst.manifest(image), daemon=True)
            pull.start()
            deadline = time.time() + 30
            while not inst.builds(image) and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(len(inst.builds(image)), 1, "the build did not start")
            workers = inst.worker_pids()
            os.kill(inst.pool_pid(), signal.SIGKILL)
            deadline = time.time() + 4
            while time.time() < deadline and any(alive(w) for w in workers):
                time.sleep(0.05)
            self.assertEqual([w for w in workers if alive(w)], [])
            self.assertEqual(inst.process.wait(30), 1)
            pull.join(60)
            inst.stop()
            self.assertEqual(inst.builds(image)[0]["duration"], None)
            started = time.time()
            inst.start()
            self.assertLess(time.time() - started, 8)
            row = inst.builds(image)[0]
            self.assertEqual(row["status"], 503, row)
            self.assertIn("interrupted", row["error"])
            self.assertIsNotNone(row["duration"])
            self.assertEqual(inst.manifest(image).status, 200)
        finally:
            inst.stop()
            if not keep_dirs():
                subprocess.run(["rm", "-rf", str(inst.dir)])

    def test_a_killed_worker_s_builder_is_killed_and_its_build_ended(self):
        # Single-user nix-build dies with its worker without killing its
        # builder, which ran on (unbounded) as init's; the build's row said
        # "building" until the next gc.
        image, marker = "pause.s30.v41", b"pause-30-41-"

        def builders():
            return running_with(marker)

        with Instance() as inst:
            pull = threading.Thread(target=lambda: inst.manifest(image), daemon=True)
            pull.start()
            deadline = time.time() + 30
            while not builders() and time.time() < deadline:
                time.sleep(0.1)
            self.assertTrue(builders(), "the build did not start")
            # Only the worker that builds (the other's death would sweep again).
            def ancestors(pid):
                while pid > 1:
                    pid = int(Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[1])
                    yield pid
            building = set(ancestors(builders()[0])) & set(inst.worker_pids())
            self.assertEqual(len(building), 1)
            # A database busy meanwhile delays nothing of this.
            busy = sqlite3.connect(str(inst.state / "nixery.sqlite"), isolation_level=None)
            busy.execute("BEGIN IMMEDIATE")
            try:
                os.kill(building.pop(), signal.SIGKILL)
                deadline = time.time() + 4
                while builders() and time.time() < deadline:
                    time.sleep(0.1)
                self.assertEqual(builders(), [])
            finally:
                busy.execute("ROLLBACK")
                busy.close()
            deadline = time.time() + 8
            while inst.builds(image)[0]["duration"] is None and time.time() < deadline:
                time.sleep(0.1)
            row = inst.builds(image)[0]
            self.assertEqual(row["status"], 503, row)
            self.assertIn("interrupted", row["error"])
            pull.join(30)

    def start_with_database(self, prepare):
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            state.mkdir()
            prepare(state / "nixery.sqlite")
            env = base_environment()
            env.update({"PORT": str(free_port()), "STORAGE_PATH": tmp + "/s",
                        "NIXERY_STATE_DIR": str(state)})
            r = subprocess.run([str(NIXERY), "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            out = r.stdout.decode()
            self.assertIn(str(state / "nixery.sqlite"), out)
            self.assertIn("restore the file from a backup", out)
            self.assertTrue((state / "nixery.sqlite").exists())
            return out

    def test_corrupt_or_unreadable_database_stops_start_up(self):
        out = self.start_with_database(lambda p: p.write_bytes(os.urandom(65536)))
        self.assertIn("file is not a database", out)
        self.start_with_database(lambda p: p.mkdir())

    def test_sigterm_during_builds_completes_or_refuses_each_pull(self):
        inst = Instance().start()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                pulls = [pool.submit(inst.manifest, name) for name in ("slow", "slow/app-a", "big", "app-b")]
                time.sleep(1.5)
                inst.process.send_signal(signal.SIGTERM)
                results = [f.result() for f in pulls]
            code = inst.process.wait(300)
            self.assertEqual(code, 0)
            for r in results:
                if r.status != 200:
                    self.assertRegistryError(r, r.status, r.json()["errors"][0]["code"])
            # Nothing half-published: every image recorded has all its blobs.
            with inst.db() as conn:
                for (manifest,) in conn.execute("SELECT docker_manifest FROM images"):
                    for layer in json.loads(manifest)["layers"]:
                        blob = inst.storage / "layers" / layer["digest"].split(":")[1]
                        self.assertTrue(blob.exists(), blob)
                        self.assertEqual(sha256_file(blob), layer["digest"].split(":")[1])
        finally:
            inst.stop()
            inst.check_logs()
            if not keep_dirs():
                subprocess.run(["rm", "-rf", str(inst.dir)])

    def test_nginx_reload_during_pulls_fails_none(self):
        with Instance() as inst:
            self.assertEqual(inst.manifest("app-a").status, 200)
            nginx_pid = int((inst.state / "nginx.pid").read_text())

            def pull(i):
                name = ("app-a", "app-b", "app-c", "hello", "shell")[i % 5]
                m = inst.manifest(name)
                if m.status != 200:
                    return m
                for layer in m.json()["layers"]:
                    b = inst.get("/v2/%s/blobs/%s" % (name, layer["digest"]))
                    if b.status != 200:
                        return b
                return m

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                pulls = [pool.submit(pull, i) for i in range(60)]
                for _ in range(3):
                    time.sleep(0.3)
                    os.kill(nginx_pid, signal.SIGHUP)
                results = [f.result() for f in pulls]
            self.assertEqual([r for r in results if r.status != 200], [])


class TmpfsCase(TestCase):
    """A test on a small tmpfs of `size`, mounted at self.mount; skipped
    where mounting is impossible."""

    size = "8m"

    def setUp(self):
        self.mount = Path(tempfile.mkdtemp(prefix="nixery-tmpfs-"))
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + self.size, "tmpfs",
                            str(self.mount)], stderr=subprocess.PIPE)
        if r.returncode != 0:
            os.rmdir(self.mount)
            self.skipTest("cannot mount a tmpfs here: " + r.stderr.decode().strip())

    def tearDown(self):
        subprocess.run(["umount", str(self.mount)])
        os.rmdir(self.mount)


class DiskFullTest(TmpfsCase):
    """Storage on a small tmpfs: the pull fails with a registry error that
    names the cause, leaves no partial blob or record, and succeeds once
    there is space again."""

    def test_storage_full(self):
        with Instance(STORAGE_PATH=self.mount,
                      expected_errors=["No space left on device"]) as inst:
            r = inst.manifest("big")
            err = self.assertRegistryError(r, 500, "INTERNAL_ERROR", "No space left on device",
                                     "request id " + r.header("X-Request-Id"))
            self.assertNotIn(str(self.mount), r.body.decode())
            # No partial blob: whatever is stored is whole.
            layers = self.mount / "layers"
            for blob in (layers.iterdir() if layers.exists() else []):
                self.assertEqual(sha256_file(blob), blob.name)
            with inst.db() as conn:
                self.assertEqual(conn.execute("SELECT count(*) FROM images").fetchone()[0], 0)
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.mount)], check=True)
            self.assertEqual(inst.manifest("big").status, 200)


class BuildDirectoryFullTest(TmpfsCase):
    """Nix's build directories (under TMPDIR) on a small tmpfs: a builder
    that fills it fails the pull with the server's 500 naming the cause,
    not a 404 for the image, and the same pull succeeds once there is
    space again."""

    def test_build_directory_full(self):
        with Instance(TMPDIR=self.mount, expected_errors=["No space left on device"]) as inst:
            r = inst.manifest("scratch")
            self.assertRegistryError(r, 500, "INTERNAL_ERROR", "No space left on device",
                                     "request id " + r.header("X-Request-Id"))
            self.assertNotIn(str(self.mount), r.body.decode())
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.mount)], check=True)
            self.assertEqual(inst.manifest("scratch").status, 200)


class KilledBuilderTest(TestCase):
    """A builder killed with SIGKILL, as the kernel's OOM killer kills one
    when memory runs out: the pull gets the server's 500 saying so, not a
    404 remembered for the image, and the next pull builds it again."""

    def builder_pids(self, marker):
        return running_with(marker, where="cmdline")

    def test_killed_builder(self):
        marker = ("nixery-victim-" + SALT).encode()
        with Instance(expected_errors=["signal 9"]) as inst:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pull = pool.submit(inst.manifest, "victim")
                deadline = time.time() + 60
                while not self.builder_pids(marker) and time.time() < deadline:
                    time.sleep(0.2)
                pids = self.builder_pids(marker)
                self.assertTrue(pids, "the builder never started")
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                r = pull.result(timeout=120)
            self.assertRegistryError(r, 500, "INTERNAL_ERROR", "signal 9", "memory runs out",
                                     "request id " + r.header("X-Request-Id"))
            self.assertEqual(inst.manifest("victim").status, 200)
            self.assertEqual([b["status"] for b in inst.builds("victim")], [500, 200])


@unittest.skipUnless(os.geteuid() == 0 and have("setpriv"), "needs root and setpriv")
class StoreAccessTest(TestCase):
    def test_a_user_who_cannot_use_the_nix_store_is_told_at_start(self):
        # As nobody, with no daemon it may use: start-up stops saying what
        # to do, instead of a pool whose every pull fails.
        work = Path(tempfile.mkdtemp(prefix="nixery-nobody-"))
        self.addCleanup(subprocess.run, ["rm", "-rf", str(work)])
        work.chmod(0o777)
        env = base_environment()
        env.update({"NIXERY_STATE_DIR": str(work / "state"), "STORAGE_PATH": str(work / "storage"),
                    "NIXERY_PKGS_PATH": str(make_package_set(work)), "HOME": str(work),
                    "XDG_CACHE_HOME": str(work / "cache")})
        env.pop("NIX_REMOTE", None)
        # As this machine is, and as one without a daemon's socket directory
        # (Debian's nix-bin alone), where Nix fails otherwise.
        for socket in (None, str(work / "no-daemon.sock")):
            if socket:
                env["NIX_DAEMON_SOCKET_PATH"] = socket
            r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                                str(NIXERY), "serve"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            out = r.stdout.decode()
            self.assertIn("this user cannot use the Nix store", out)
            self.assertIn("nix-users", out)


class StateFullTest(TmpfsCase):
    """The state directory (the database, nginx's links, logs and cache, the
    locks) on a small tmpfs that fills up: a pull gets a registry 5xx that
    names the cause, nothing is half recorded, and the same pull succeeds
    once there is space again, without a restart."""

    size = "16m"

    def fill(self):
        """Takes every free byte of the mount; returns the file holding them."""
        filler = self.mount / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as e:
                self.assertEqual(e.errno, 28)
        return filler

    def test_state_full(self):
        inst = Instance(NIXERY_STATE_DIR=self.mount,
                        expected_errors=["database or disk is full", "No space left on device"])
        inst.state = self.mount
        with inst:
            self.assertEqual(inst.manifest("hello").status, 200)
            filler = self.fill()
            # A fresh instance's database has not been checkpointed yet:
            # the new build's records need its write-ahead log to grow.
            r = inst.manifest("app-a")
            self.assertRegistryError(r, 500, "INTERNAL_ERROR", "database or disk is full",
                                     "request id " + r.header("X-Request-Id"))
            self.assertNotIn(str(self.mount), r.body.decode())
            # Consistent, nothing of app-a recorded, no staging file left.
            with inst.db() as conn:
                self.assertEqual(conn.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                self.assertEqual(conn.execute("SELECT count(*) FROM images").fetchone()[0], 1)
                self.assertEqual(conn.execute("SELECT count(*) FROM builds WHERE image = 'app-a' "
                                              "AND status IS NULL").fetchone()[0], 0)
            self.assertEqual(list(self.mount.glob("*.tmp")), [])
            # What was there is still served (a pull of the image built before).
            m = inst.manifest("hello")
            self.assertEqual(m.status, 200)
            for layer in m.json()["layers"]:
                self.assertEqual(inst.get("/v2/hello/blobs/" + layer["digest"]).status, 200)
            os.unlink(filler)
            m = inst.manifest("app-a")
            self.assertEqual(m.status, 200, m)
            for layer in m.json()["layers"]:
                b = inst.get("/v2/app-a/blobs/" + layer["digest"])
                self.assertEqual(b.status, 200)
                self.assertEqual("sha256:" + hashlib.sha256(b.body).hexdigest(), layer["digest"])


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; counts the requests of each path."""
    counts = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        self.counts[path] = self.counts.get(path, 0) + 1
        return super().do_GET()


class AbuseTest(TestCase):
    def test_manifest_requests_are_rate_limited_per_client(self):
        with Instance(NIXERY_MANIFEST_RATE=1, NIXERY_MANIFEST_BURST=3) as inst:
            first = inst.manifest("app-a")
            self.assertEqual(first.status, 200)
            answers = [inst.manifest("app-a") for _ in range(10)]
            limited = [r for r in answers if r.status == 429]
            self.assertGreater(len(limited), 0, answers)
            self.assertLess(len(limited), 10, answers)
            self.assertRegistryError(limited[0], 429, "TOOMANYREQUESTS", "retry")
            self.assertEqual(limited[0].header("Retry-After"), "1")
            # Blobs are not limited.
            digest = first.json()["layers"][0]["digest"]
            for _ in range(10):
                self.assertEqual(inst.get("/v2/app-a/blobs/" + digest).status, 200)
            time.sleep(2.5)
            self.assertEqual(inst.manifest("app-a").status, 200)

    def test_made_up_tags_of_a_local_package_set_are_not_recorded(self):
        with Instance() as inst:
            for i in range(30):
                self.assertEqual(inst.manifest("app-a", "made-up-%d" % i).status, 200)
            self.assertEqual(inst.get("/v2/app-a/tags/list").json()["tags"], ["latest"])

    @unittest.skipUnless(have("git"), "git is needed")
    def test_made_up_git_refs_cost_one_upstream_call_per_interval(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-refs-"))
        self.addCleanup(subprocess.run, ["rm", "-rf", str(work)])
        repo = make_package_set(work)
        git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
               "-c", "init.defaultBranch=main", "-C", str(repo)]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
        served = work / "served"
        served.mkdir()
        subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(served / "pkgs.git")], check=True)
        subprocess.run(["git", "-C", str(served / "pkgs.git"), "update-server-info"], check=True)
        counts = {}
        handler = functools.partial(type("H", (CountingHandler,), {"counts": counts}),
                                    directory=str(served))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = "http://127.0.0.1:%d/pkgs.git" % server.server_address[1]
        refs = "/pkgs.git/info/refs"
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=url, NIXERY_GIT_REFS_TTL=120) as inst:
            self.assertEqual(inst.manifest("hello").status, 200)
            calls = counts.get(refs, 0)
            self.assertGreaterEqual(calls, 1)
            for i in range(30):
                self.assertRegistryError(inst.manifest("hello", "made-up-%d" % i), 404,
                                         "MANIFEST_UNKNOWN", '"made-up-%d"' % i)
            for i in range(10):
                commit = "%040x" % random.getrandbits(160)
                self.assertRegistryError(inst.manifest("hello", commit), 404, "MANIFEST_UNKNOWN", commit)
            self.assertLessEqual(counts.get(refs, 0), calls + 1, counts)
            # Nothing made up was listed.
            self.assertEqual(inst.get("/v2/hello/tags/list").json()["tags"], ["latest"])


class DiskBudgetTest(TestCase):
    def test_gc_lets_nix_delete_exactly_the_paths_of_forgotten_images(self):
        from test_deploy_gc import age_image, age_storage
        from harness import SALT, run
        with Instance() as inst:
            self.assertEqual(inst.manifest("slow").status, 200)
            self.assertEqual(inst.manifest("app-a").status, 200)
            with inst.db() as conn:
                paths = {r[0] for r in conn.execute("SELECT store_path FROM image_store_paths")}
            gone = [p for p in paths if p.endswith("-slow-" + SALT)]
            self.assertEqual(len(gone), 1, paths)
            kept = paths - set(gone)
            self.assertTrue(kept)
            age_image(inst, "slow")
            age_storage(inst.storage, hours=40 * 24)
            self.assertEqual(inst.manifest("app-a").status, 200)  # a use: kept
            # Off by default: the image is forgotten, its store path stays.
            env = dict(inst.env)
            run([str(NIXERY), "gc", "--keep-days", "1"], env=env)
            self.assertTrue(Path(gone[0]).exists())
            # On: exactly that path goes; those of the kept image stay.
            env["NIXERY_NIX_GC"] = "true"
            out = run([str(NIXERY), "gc", "--keep-days", "1"], env=env).stdout.decode()
            self.assertIn("deleted 1 store path from the Nix store", out)
            self.assertFalse(Path(gone[0]).exists())
            for p in kept:
                self.assertTrue(Path(p).exists(), p)
            # Pulled again, it is built again.
            self.assertEqual(inst.manifest("slow").status, 200)
            self.assertTrue(Path(gone[0]).exists())

    def test_gc_deletes_more_store_paths_than_one_command_line_holds(self):
        # 12 000 candidates of ~200 bytes: 2.4 MB, over Linux's 2 MiB for
        # the arguments and environment of one exec.
        from harness import run
        salt = "%016x" % random.getrandbits(64)
        expr = ('builtins.genList (i: builtins.toFile "nixery-many-%s-${toString i}-%s" "${toString i}") 12000'
                % (salt, "x" * 140))
        env = dict(os.environ, NIX_CONFIG="substituters =")
        paths = json.loads(run(["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode",
                                "-E", expr], env=env).stdout)
        self.assertGreater(sum(len(p) + 1 for p in paths), 2 << 20)
        with Instance() as inst:
            with inst.db() as conn:
                conn.executemany("INSERT INTO nix_gc_candidates (store_path) VALUES (?)", [(p,) for p in paths])
            env = dict(inst.env, NIXERY_NIX_GC="true")
            out = run([str(NIXERY), "gc", "--keep-days", "1"], env=env).stdout.decode()
            self.assertIn("deleted 12000 store paths from the Nix store", out)
            self.assertEqual([p for p in paths if Path(p).exists()], [])
            with inst.db() as conn:
                self.assertEqual(conn.execute("SELECT count(*) FROM nix_gc_candidates").fetchone()[0], 0)
