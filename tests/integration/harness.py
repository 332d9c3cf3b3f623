"""Test harness: real instances of nixery (nginx + the worker pool, started
with `nixery run`) on free loopback ports, each with its own storage and
state directories, driven by real clients (HTTP, skopeo, umoci).

An instance's logs are checked when it stops: nginx must not have logged
alerts or worse, the pool must not have logged an error the test did not
expect, and no sanitizer may have reported anything. Set
NIXERY_KEEP_TEST_DIRS=1 to keep every instance's directories for
inspection (they are kept anyway when a check fails).
"""

import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NIXERY = ROOT / "build" / "nixery"
# The AddressSanitizer + UBSan build `make check` makes.
NIXERY_SANITIZED = ROOT / "build" / "check" / "nixery"
TEST_PKGS = ROOT / "tests" / "pkgs"

# Settings of the environment that must not leak into a test instance.
_INSTANCE_VARIABLES = ("PORT", "STORAGE_PATH", "GCS_BUCKET", "GOOGLE_APPLICATION_CREDENTIALS",
                       "STORAGE_EMULATOR_HOST", "GCS_ENDPOINT", "GCE_METADATA_HOST", "S3_BUCKET", "S3_ENDPOINT", "S3_REGION",
                       "S3_PATH_STYLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                       "AWS_SESSION_TOKEN", "NIX_TIMEOUT", "NIX_POPULARITY_URL")

# One salt per test run: packages that must be built afresh get new paths.
SALT = "%016x" % random.getrandbits(64)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """Whether process `pid` runs (exists and is no zombie)."""
    try:
        return "zombie" not in Path("/proc/%d/status" % pid).read_text()
    except OSError:
        return False


def running_with(marker, where="environ"):
    """The running processes whose environment (or `where`: "cmdline")
    holds `marker` (bytes): the builders of a package whose name has it,
    which Nix puts in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / where).read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return [p for p in found if alive(p)]


def interrupted(argv, env, ready, cwd=None, within=30):
    """Runs `argv` until `ready()` holds (a builder of it runs, say), then
    sends it SIGINT, as Ctrl-C does: returns its exit status, stdout and
    stderr, and how many seconds it took to exit after the signal."""
    command = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        wait_for(ready, within, "the command to get under way")
        signalled = time.time()
        command.send_signal(signal.SIGINT)
        out, err = command.communicate(timeout=20)
        return command.returncode, out, err, time.time() - signalled
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()


def wait_for(predicate, timeout, what):
    """Polls `predicate` every 0.1 s for up to `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def keep_dirs():
    return os.environ.get("NIXERY_KEEP_TEST_DIRS") == "1"


def make_package_set(directory, salt=SALT):
    """A copy of the test package set, salted for this run."""
    target = Path(directory) / "pkgs"
    shutil.copytree(TEST_PKGS, target)
    (target / "salt.nix").write_text('"%s"\n' % salt)
    # The copy imports the demo set from the checkout.
    text = (target / "default.nix").read_text()
    (target / "default.nix").write_text(text.replace("../../src/nix/demo", str(ROOT / "src/nix/demo")))
    return target


def _sandbox_works():
    """Whether Nix can build in its sandbox here (user namespaces)."""
    bb = ('let d = builtins.path { name = "busybox"; path = /usr/bin; filter = p: t: baseNameOf p == "busybox"; }; '
          'in derivation { name = "nixery-sandbox-probe-%s"; system = builtins.currentSystem; '
          'builder = "${d}/busybox"; args = [ "sh" "-c" "echo > $out" ]; }' % SALT)
    env = dict(os.environ, NIX_CONFIG="substituters =\nsandbox = true\n")
    try:
        return subprocess.run(["nix-build", "--no-out-link", "-E", bb], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# Builds run in Nix's sandbox whenever this machine supports it, as they do
# for users with a multi-user Nix.
SANDBOX = _sandbox_works()
print("[harness] Nix sandbox %s" % ("on" if SANDBOX else "off: not supported on this machine"))


def base_environment():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NIXERY_") and k not in _INSTANCE_VARIABLES}
    # Nix would try cache.nixos.org (and wait for DNS) on every call.
    env["NIX_CONFIG"] = "substituters =\n" + ("sandbox = true\n" if SANDBOX else "")
    return env


def accepts_unix(path):
    """Whether a server accepts connections on unix socket `path`."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


class NixDaemon:
    """A Nix daemon of the test's own (as root: it owns the store), on a
    socket in `directory`, with the tests' Nix settings; stopped by PID.
    `remote` is the NIX_REMOTE that builds through it."""

    def __init__(self, directory):
        self.socket = Path(directory) / "nix-daemon.sock"
        self.remote = "unix://%s" % self.socket
        env = base_environment()
        env["NIX_DAEMON_SOCKET_PATH"] = str(self.socket)
        self._log = open(Path(directory) / "nix-daemon.log", "ab")
        self.process = subprocess.Popen(["nix-daemon"], env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not accepts_unix(self.socket):
            if self.process.poll() is not None or time.time() > deadline:
                self.stop()
                raise AssertionError("the Nix daemon did not start")
            time.sleep(0.1)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(60)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Instance:
    """A running nixery (`nixery run`) with its own directories."""

    def __init__(self, package_set=None, expected_errors=(), binary=NIXERY, salt=SALT, **settings):
        """`salt`: a salt of its own gives the instance slow packages that
        no other test has built yet."""
        self.binary = Path(binary)
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-it-"))
        self.port = free_port()
        self.storage = self.dir / "storage"
        self.state = self.dir / "state"
        self.package_set = Path(package_set) if package_set else make_package_set(self.dir, salt)
        self.expected_errors = list(expected_errors)
        self.env = base_environment()
        self.env.update({
            "PORT": str(self.port),
            "STORAGE_PATH": str(self.storage),
            "NIXERY_STATE_DIR": str(self.state),
            "NIXERY_PKGS_PATH": str(self.package_set),
            "NIXERY_WORKERS": "2",
        })
        for k, v in settings.items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        self.process = None
        self.log_path = self.dir / "nixery.log"
        self.failed = False

    # -- life cycle ---------------------------------------------------------

    def start(self, timeout=60):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(self.binary), "run"], env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("nixery run exited with %d:\n%s" % (self.process.returncode, self.log_text()))
            try:
                if self.get("/v2/").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("nixery did not answer within %d s:\n%s" % (timeout, self.log_text()))

    def stop(self, timeout=120):
        """SIGTERM, wait, then check the logs. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError("nixery did not stop within %d s after SIGTERM" % timeout)
        self._log.close()
        code = self.process.returncode
        self.process = None
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            code = self.stop()
            if exc_type is None:
                self.check_logs()
                if code != 0:
                    raise AssertionError("nixery exited with %r after SIGTERM" % code)
        except BaseException:
            self.failed = True
            raise
        finally:
            if exc_type is not None:
                self.failed = True
            if self.failed or keep_dirs():
                print("\n[kept %s]" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs -----------------------------------------------------------------

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self):
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        return records

    def check_logs(self):
        # A sanitizer report (AddressSanitizer, UndefinedBehaviorSanitizer,
        # LeakSanitizer) fails the test, whichever build ran.
        reports = [l for l in self.log_text().splitlines() if "Sanitizer" in l or "runtime error:" in l]
        if reports:
            raise AssertionError("sanitizer reports in the log:\n" + "\n".join(reports[:20]))
        nginx_log = self.state / "nginx-error.log"
        if nginx_log.exists():
            bad = [l for l in nginx_log.read_text().splitlines()
                   if any(level in l for level in ("[alert]", "[crit]", "[emerg]"))]
            if bad:
                raise AssertionError("nginx logged alerts:\n" + "\n".join(bad))
        for r in self.log_records():
            if r.get("level") == "error":
                text = json.dumps(r)
                if not any(e in text for e in self.expected_errors):
                    raise AssertionError("unexpected error in the log: " + text)

    # -- HTTP -----------------------------------------------------------------

    def request(self, method, path, headers=None, timeout=300):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, headers=None, timeout=300):
        return self.request("GET", path, headers, timeout)

    def head(self, path, headers=None, timeout=300):
        return self.request("HEAD", path, headers, timeout)

    def metric(self, name):
        """The value of an unlabelled metric in /metrics, as a number."""
        for line in self.get("/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no metric " + name)

    def manifest(self, name, tag="latest", accept=None):
        headers = {"Accept": accept} if accept else {}
        return self.get("/v2/%s/manifests/%s" % (name, tag), headers)

    # -- state ------------------------------------------------------------------

    @contextlib.contextmanager
    def db(self):
        """A connection to the instance's database, committed and closed at
        the end of the block. Not left open: SQLite's POSIX locks belong to
        the process, and another open and close of the file in this process
        would drop them under the connection (sqlite.org/howtocorrupt.html)."""
        conn = sqlite3.connect(str(self.state / "nixery.sqlite"), timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def builds(self, image=None):
        with self.db() as conn:
            if image is None:
                return [dict(r) for r in conn.execute("SELECT * FROM builds ORDER BY id")]
            return [dict(r) for r in conn.execute("SELECT * FROM builds WHERE image = ? ORDER BY id", (image,))]

    def packed_layers(self):
        """Digests of the layers this instance packed (from its log)."""
        return [r["digest"] for r in self.log_records() if r.get("msg") == "layer packed"]

    def blob_files(self):
        layers = self.storage / "layers"
        return sorted(layers.iterdir()) if layers.exists() else []

    # -- processes --------------------------------------------------------------

    def children(self, pid):
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command name is in parentheses and may contain spaces
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append(int(entry.name))
        return out

    def pool_pid(self):
        """The worker pool's master: the child of `nixery run` that is not nginx."""
        for pid in self.children(self.process.pid):
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
            if cmdline[1:2] == [b"serve"]:
                return pid
        raise AssertionError("no worker pool process found")

    def worker_pids(self):
        return self.children(self.pool_pid())


# -- clients -------------------------------------------------------------------

def run(argv, timeout=600, check=True, **kwargs):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(map(str, argv)), result.returncode,
                                                          result.stdout.decode(errors="replace"),
                                                          result.stderr.decode(errors="replace")))
    return result


def skopeo_copy(instance, name, tag, layout, layout_tag="image", oci=False):
    """Pulls HOST/name:tag into an OCI layout directory with skopeo."""
    argv = ["skopeo", "copy", "--src-tls-verify=false"]
    if oci:
        argv += ["--format", "oci"]
    argv += ["docker://127.0.0.1:%d/%s:%s" % (instance.port, name, tag), "oci:%s:%s" % (layout, layout_tag)]
    return run(argv)


def unpack(layout, layout_tag, bundle):
    """Unpacks an image of an OCI layout with umoci; returns the rootfs."""
    run(["umoci", "unpack", "--image", "%s:%s" % (layout, layout_tag), str(bundle)])
    return Path(bundle) / "rootfs"


def in_rootfs(rootfs, *argv):
    """Runs a program from the image inside its unpacked rootfs."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    return run([chroot, str(rootfs)] + list(argv), env={"PATH": "/bin:/usr/bin"}).stdout.decode()


def podman_argv(storage):
    """podman with its own storage under `storage`, the vfs driver and runc:
    what works on this kind of machine."""
    return ["podman", "--root", str(Path(storage) / "root"), "--runroot", str(Path(storage) / "run"),
            "--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none"]


# `podman run` without network, with the limits this kind of machine allows.
PODMAN_RUN = ["run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def have(program):
    return shutil.which(program) is not None


class TestCase(unittest.TestCase):
    maxDiff = None

    def assertRegistryError(self, response, status, code, *message_parts):
        self.assertEqual(response.status, status, response)
        self.assertEqual(response.header("Content-Type"), "application/json", response)
        errors = response.json()["errors"]
        self.assertEqual(errors[0]["code"], code, response)
        for part in message_parts:
            self.assertIn(part, errors[0]["message"])
        return errors[0]
