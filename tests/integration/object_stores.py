"""Object stores for the tests, on 127.0.0.1 and stopped by PID: s3rver
(from the npm registry, installed under build/npm when missing) behind the
SigV4-checking proxy of s3_sigv4_proxy.py, the GCS test server of
gcs_server.py with a service-account key made by openssl, a TCP proxy that
stalls or cuts uploads on the way to either, and a black hole that accepts
connections and never answers. Also storage_tool(), which drives one
backend through build/storage-tool.
"""

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness import ROOT, base_environment, free_port, keep_dirs, run

STORAGE_TOOL = ROOT / "build" / "storage-tool"
NPM_PREFIX = ROOT / "build" / "npm"
S3RVER = NPM_PREFIX / "node_modules" / ".bin" / "s3rver"
GCS_SERVER = Path(__file__).resolve().parent / "gcs_server.py"
SIGV4_PROXY = Path(__file__).resolve().parent / "s3_sigv4_proxy.py"
PYTHON = "/usr/bin/python3"


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError("%s exited with %d" % (what, process.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("%s did not listen on %d within %d s" % (what, port, timeout))


def stop_process(process):
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_s3rver():
    """Installs s3rver from the npm registry when it is missing; returns
    None when it cannot be had (no npm), so tests can skip."""
    if S3RVER.exists():
        return S3RVER
    if shutil.which("npm") is None:
        return None
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    # Test classes run side by side (run.py): one installs, the others wait.
    with open(NPM_PREFIX / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not S3RVER.exists():
            run(["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "s3rver@3"],
                timeout=600)
    return S3RVER if S3RVER.exists() else None


class StoreProcess:
    """A store server run by the tests: its directory, port and process, and
    the log of the requests it checked (one JSON object per line)."""

    def __init__(self, prefix):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.process = None
        self.requests_log = self.dir / "requests.log"

    def requests(self):
        if not self.requests_log.exists():
            return []
        return [json.loads(l) for l in self.requests_log.read_text().splitlines() if l.strip()]

    def stop(self):
        stop_process(self.process)
        self.process = None

    def cleanup(self):
        self.stop()
        self.log.close()
        if not keep_dirs():
            shutil.rmtree(self.dir, ignore_errors=True)

    def endpoint(self, port=None):
        return "http://127.0.0.1:%d" % (port or self.port)


class S3rver(StoreProcess):
    """s3rver with its buckets, behind s3_sigv4_proxy.py: clients talk to
    the proxy (`port`), which recomputes every SigV4 signature (s3rver
    checks only the access key) and serves virtual-host addressing for
    hosts under VIRTUAL_HOST_DOMAIN."""

    ACCESS_KEY = "S3RVER"
    SECRET_KEY = "S3RVER"
    # A reserved name (RFC 6761) that never resolves: clients reach the
    # proxy for it through http_proxy, as they would a real forward proxy.
    VIRTUAL_HOST_DOMAIN = "s3.test"

    def __init__(self, bucket="nixery-test", more_buckets=()):
        self.bucket = bucket
        self.buckets = [bucket] + list(more_buckets)
        super().__init__("nixery-s3rver-")
        self.s3rver_port = free_port()
        self.proxy = None

    def start(self):
        self.log = open(self.dir / "s3rver.log", "ab")
        buckets = [a for b in self.buckets for a in ("--configure-bucket", b)]
        # s3rver encrypts continuation tokens with DES, which OpenSSL 3 keeps
        # in its legacy provider; without it, paginated listings fail.
        env = dict(base_environment(), NODE_OPTIONS="--openssl-legacy-provider")
        self.process = subprocess.Popen(
            [str(ensure_s3rver()), "-d", str(self.dir / "data"), "-a", "127.0.0.1", "-p", str(self.s3rver_port)]
            + buckets, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        wait_for_port(self.s3rver_port, self.process, "s3rver")
        self.proxy = subprocess.Popen(
            [PYTHON, str(SIGV4_PROXY), "--port", str(self.port), "--upstream-port", str(self.s3rver_port),
             "--access-key", self.ACCESS_KEY, "--secret-key", self.SECRET_KEY, "--region", "us-east-1",
             "--domain", self.VIRTUAL_HOST_DOMAIN, "--log", str(self.requests_log)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proxy, "the SigV4 proxy")
        return self

    def stop(self):
        stop_process(self.proxy)
        self.proxy = None
        super().stop()

    def settings(self, port=None, bucket=None, **overrides):
        env = {"NIXERY_STORAGE_BACKEND": "s3", "S3_BUCKET": bucket or self.bucket, "S3_ENDPOINT": self.endpoint(port),
               "S3_PATH_STYLE": "true", "S3_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}
        env.update(overrides)
        return env

    def virtual_host_settings(self, port=None, bucket=None, **overrides):
        """Virtual-host addressing: the endpoint is a name under the test
        domain, reached through the proxy as an HTTP proxy (libcurl honours
        http_proxy), so "<bucket>.s3.test" needs no DNS."""
        env = self.settings(bucket=bucket, S3_ENDPOINT="http://" + self.VIRTUAL_HOST_DOMAIN, S3_PATH_STYLE="false",
                            http_proxy="http://127.0.0.1:%d" % (port or self.port), no_proxy=None, NO_PROXY=None)
        env.update(overrides)
        return env

    def opener(self, port=None):
        """A urllib opener that goes through the proxy, for following
        presigned virtual-host URLs."""
        import urllib.request
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": "http://127.0.0.1:%d" % (port or self.port)}))

    def refuse_checksums(self, on=True):
        """Refuse x-amz-checksum-sha256, as Backblaze B2 does."""
        import urllib.request
        urllib.request.urlopen("%s/_control/refuse-checksums?on=%d" % (self.endpoint(), int(on))).read()

    def fail_completions(self, count):
        """Answer the next `count` CompleteMultipartUpload requests with 200
        and an <Error> document, as S3 may."""
        import urllib.request
        urllib.request.urlopen("%s/_control/fail-complete?count=%d" % (self.endpoint(), count)).read()

    def lose_complete_answers(self, count):
        import urllib.request
        urllib.request.urlopen("%s/_control/lose-complete?count=%d" % (self.endpoint(), count)).read()


class GcsServer(StoreProcess):
    """gcs_server.py with a fresh service account (an RSA key made by
    openssl) whose token_uri is the server itself."""

    CLIENT_EMAIL = "nixery-test@nixery-test.iam.gserviceaccount.com"

    def __init__(self, bucket="nixery-test", *flags, more_buckets=()):
        self.bucket = bucket
        self.flags = list(flags) + [a for b in more_buckets for a in ("--bucket", b)]
        super().__init__("nixery-gcs-")
        self.key_file = self.dir / "service-account.json"

    def make_key(self, name):
        private = self.dir / (name + ".pem")
        public = self.dir / (name + ".pub.pem")
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private)])
        run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)])
        return private, public

    def write_key_file(self, path, private, token_uri):
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "nixery-test", "private_key_id": "0123456789abcdef",
            "private_key": private.read_text(), "client_email": self.CLIENT_EMAIL,
            "client_id": "1", "token_uri": token_uri}))

    def start(self):
        private, public = self.make_key("key")
        self.write_key_file(self.key_file, private, "http://127.0.0.1:%d/token" % self.port)
        # A key the server does not know, for refused-credentials tests.
        other, _ = self.make_key("other")
        self.wrong_key_file = self.dir / "wrong-service-account.json"
        self.write_key_file(self.wrong_key_file, other, "http://127.0.0.1:%d/token" % self.port)
        self.log = open(self.dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [PYTHON, str(GCS_SERVER), "--port", str(self.port), "--bucket", self.bucket,
             "--public-key", str(public), "--client-email", self.CLIENT_EMAIL,
             "--log", str(self.requests_log)] + self.flags,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.process, "the GCS test server")
        return self

    def settings(self, port=None, bucket=None, **overrides):
        env = {"NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": bucket or self.bucket, "GCS_ENDPOINT": self.endpoint(port),
               "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)}
        env.update(overrides)
        return env

    def fail_next(self, status, count):
        import urllib.request
        urllib.request.urlopen("%s/_control/fail?status=%d&count=%d" % (self.endpoint(), status, count)).read()

    def stall_chunks(self, count):
        """The next `count` resumable chunks are dropped: 308 without progress."""
        import urllib.request
        urllib.request.urlopen("%s/_control/stall-chunks?count=%d" % (self.endpoint(), count)).read()


class LoopbackListener:
    """A TCP listener on a free loopback port whose accepted connections go
    to `_serve(client)` on the accepting thread; close() ends listening and
    closes every socket kept in `sockets`."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._serve(client)

    def _serve(self, client):
        raise NotImplementedError

    def close(self):
        self.closed = True
        self.listener.close()
        for s in list(self.sockets):
            try:
                s.close()
            except OSError:
                pass


class BlackHole(LoopbackListener):
    """A TCP server that accepts every connection, reads what comes and
    never answers: a store (or token endpoint) that is up but stuck."""

    def __init__(self):
        self.accepted = 0
        super().__init__()

    def _serve(self, client):
        self.accepted += 1
        self.sockets.append(client)
        threading.Thread(target=self._swallow, args=(client,), daemon=True).start()

    @staticmethod
    def _swallow(client):
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass


class FaultProxy(LoopbackListener):
    """A TCP proxy in front of a store. After `limit` bytes from clients
    (counted over all connections) it stalls (holds every byte until
    release()), cuts (closes every connection once, then passes again) or
    drops (closes every connection that gets there, for good)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.mode = None
        self.limit = None
        self.forwarded = 0
        self.tripped = threading.Event()
        self.released = threading.Event()
        super().__init__()

    def stall_after(self, limit):
        self.mode, self.limit, self.forwarded = "stall", limit, 0

    def cut_after(self, limit):
        self.mode, self.limit, self.forwarded = "cut", limit, 0

    def drop_after(self, limit):
        """Closes every connection that reaches the limit, for good."""
        self.mode, self.limit, self.forwarded = "drop", limit, 0

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        super().close()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        self.sockets += [client, upstream]
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _cut_all(self):
        for s in list(self.sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.sockets = []

    def _pump(self, src, dst, upload):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upload:
                    with self.lock:
                        allowed = len(data)
                        if self.limit is not None and self.forwarded + len(data) >= self.limit:
                            allowed = max(0, self.limit - self.forwarded)
                        self.forwarded += allowed
                    if allowed < len(data):
                        if allowed:
                            dst.sendall(data[:allowed])
                        self.tripped.set()
                        if self.mode == "stall":
                            self.released.wait()
                            break
                        if self.mode == "drop":
                            break
                        with self.lock:
                            self.limit = None  # cut once, then pass
                        self._cut_all()
                        return
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def storage_tool(settings, *args, state_dir, check=True, timeout=300, stdin=None):
    """Runs build/storage-tool with only `settings` for configuration."""
    env = base_environment()
    env.update(settings)
    env["NIXERY_STATE_DIR"] = str(state_dir)
    env = {k: v for k, v in env.items() if v is not None}
    return run([str(STORAGE_TOOL)] + [str(a) for a in args], env=env, check=check, timeout=timeout)
