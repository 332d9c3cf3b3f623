"""The storage contract, the same for every backend: publish (put, and
persist through a staging file, streamed), fetch, exists, stat, serve
(locate, and what a client gets when it follows the location), remove,
list, missing objects, atomic publication (an interrupted upload leaves
nothing under the final name) and bounded waiting (a store that never
answers fails a call within its budget). Run against the filesystem, S3
(s3rver behind the SigV4-checking proxy, path style and virtual host) and
GCS (the test server of gcs_server.py) through build/storage-tool."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from harness import ROOT, TestCase, base_environment, free_port, have, keep_dirs, sha256_file
from object_stores import (STORAGE_TOOL, BlackHole, FaultProxy, GcsServer, S3rver, ensure_s3rver, storage_tool)

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BIG = 20 * 1024 * 1024 + 12345  # above the 8 MiB single-request limit: multipart / resumable
HUGE = 100 * 1024 * 1024 + 54321  # for the streaming check: far above what a process should hold
# What a storage call may take (src/http/retry.hpp), and some slack.
BUDGET = 30


class Contract:
    """Mixed into a TestCase per backend; the subclass provides settings()."""

    remote = True

    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="nixery-contract-"))
        cls.state = cls.work / "state"
        cls.big = cls.work / "big"
        with open(cls.big, "wb") as f:
            f.write(os.urandom(BIG))
        cls.big_sha = hashlib.sha256(cls.big.read_bytes()).hexdigest()
        cls.huge = cls.work / "huge"
        digest = hashlib.sha256()
        with open(cls.huge, "wb") as f:
            left = HUGE
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                digest.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        cls.huge_sha = digest.hexdigest()

    @classmethod
    def tearDownClass(cls):
        if not keep_dirs():
            shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        # What every nixery process does first (it creates the staging
        # directory), so each test stands on its own.
        self.tool("check")

    def tool(self, *args, settings=None, check=True, timeout=300):
        return storage_tool(settings or self.settings(), *args, state_dir=self.state, check=check,
                            timeout=timeout)

    def file(self, name, data):
        path = self.work / name
        path.write_bytes(data)
        return path

    def exists(self, key, settings=None):
        return self.tool("exists", key, settings=settings).stdout.decode().strip() == "true"

    def listed(self, prefix, settings=None):
        out = self.tool("list", prefix, settings=settings).stdout.decode()
        return {o["key"]: o for o in map(json.loads, out.splitlines())}

    def urlopen(self, request):
        """Opens a URL the backend gave out, as a client would."""
        return urllib.request.urlopen(request, timeout=30)

    def follow(self, key, digest=False):
        """What a client gets for `key`: (body, content type), or (sha256
        hex of the body, content type) with `digest`."""
        location = json.loads(self.tool("locate", key).stdout)
        if location["kind"] == "accel_redirect":
            # nginx serves STORAGE_PATH + the part after /_storage/.
            self.assertTrue(location["location"].startswith("/_storage/"), location)
            path = Path(self.settings()["STORAGE_PATH"]) / location["location"][len("/_storage/"):]
            with open(path, "rb") as f:
                return self.read(f, digest), None
        self.assertEqual(location["kind"], "redirect")
        with self.urlopen(location["location"]) as r:
            return self.read(r, digest), r.headers.get("Content-Type")

    @staticmethod
    def read(stream, digest):
        if not digest:
            return stream.read()
        h = hashlib.sha256()
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()

    def assertWellWorded(self, stderr, key):
        """The error (the last line; warnings logged on the way come
        before it) in the house shape: a lowercase operation, the object
        named once, no repeated prefixes."""
        message = stderr.strip().splitlines()[-1]
        self.assertRegex(message, r"^[a-z]", message)
        self.assertEqual(message.count(key), 1, message)
        self.assertEqual(len(re.findall(r"\bfailed( after \d+ attempts)?:", message)), 1, message)

    # -- the contract ----------------------------------------------------------

    def test_check(self):
        out = self.tool("check").stdout.decode()
        self.assertTrue(out.strip())

    def test_put_fetch_exists_remove(self):
        key = "cache/layers/%s.json" % self.id().rsplit(".", 1)[1]
        data = b'{"digest":"sha256:00"}'
        self.tool("put", key, self.file("small", data), "application/json")
        self.assertTrue(self.exists(key))
        self.assertEqual(self.tool("fetch", key).stdout, data)
        # Replacing an object is allowed (records are rewritten).
        self.tool("put", key, self.file("small2", b"{}"), "application/json")
        self.assertEqual(self.tool("fetch", key).stdout, b"{}")
        self.tool("remove", key)
        self.assertFalse(self.exists(key))

    def test_missing_object(self):
        key = "layers/" + "0" * 64
        self.assertFalse(self.exists(key))
        r = self.tool("fetch", key, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.tool("remove", key)  # removing what is not there is fine

    def test_persist_streams_a_large_blob(self):
        key = "layers/" + self.big_sha
        staging = Path(self.tool("staging-dir").stdout.decode().strip())
        before = set(staging.iterdir()) if staging.exists() else set()
        self.tool("persist", key, self.big, LAYER_TYPE)
        self.assertTrue(self.exists(key))
        self.assertEqual(hashlib.sha256(self.tool("fetch", key).stdout).hexdigest(), self.big_sha)
        self.assertEqual(self.listed("layers/")[key]["size"], BIG)
        body, content_type = self.follow(key)
        self.assertEqual(hashlib.sha256(body).hexdigest(), self.big_sha)
        if self.remote:
            self.assertEqual(content_type, LAYER_TYPE)
        self.assertEqual(set(staging.iterdir()), before, "the staging file is removed after the upload")

    def test_persist_never_holds_the_blob(self):
        # The tool copies the file into the staging file in chunks, so its
        # peak memory is what the backend holds while it uploads.
        key = "layers/" + self.huge_sha
        out = self.tool("persist", key, self.huge, LAYER_TYPE).stdout.decode()
        peak = json.loads(out)["peak_rss_kib"] * 1024
        self.assertGreater(peak, 0)
        self.assertLess(peak, HUGE / 4, "the upload held %d MiB" % (peak >> 20))
        self.assertEqual(self.listed("layers/")[key]["size"], HUGE)
        self.assertEqual(self.follow(key, digest=True)[0], self.huge_sha)
        self.tool("remove", key)

    def test_read_streams_a_blob(self):
        # What `nixery build` copies layers with: the bytes, in bounded memory.
        key = "layers/" + self.huge_sha
        self.tool("persist", key, self.huge, LAYER_TYPE)
        out = self.work / ("read-" + self.id().rsplit(".", 1)[1])
        try:
            peak = json.loads(self.tool("read", key, out).stdout.decode())["peak_rss_kib"] * 1024
            self.assertEqual(sha256_file(out), self.huge_sha)
            self.assertGreater(peak, 0)
            self.assertLess(peak, HUGE / 4, "the read held %d MiB" % (peak >> 20))
        finally:
            out.unlink(missing_ok=True)
            self.tool("remove", key)
        r = self.tool("read", key, out, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_stat(self):
        data = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "stat": True}).encode()
        key = "layers/" + hashlib.sha256(data).hexdigest()
        self.tool("put", key, self.file("stat", data), MANIFEST_TYPE)
        info = json.loads(self.tool("stat", key).stdout)
        self.assertEqual(info["size"], len(data))
        self.assertLess(abs(info["modified"] - time.time()), 120, info)
        # Object stores keep the type given at upload; files have none.
        self.assertEqual(info["content_type"], MANIFEST_TYPE if self.remote else "")
        r = self.tool("stat", "layers/" + "1" * 64, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_served_manifest_keeps_its_media_type(self):
        data = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE}).encode()
        key = "layers/" + hashlib.sha256(data).hexdigest()
        self.tool("put", key, self.file("manifest", data), MANIFEST_TYPE)
        body, content_type = self.follow(key)
        self.assertEqual(body, data)
        if self.remote:
            self.assertEqual(content_type, MANIFEST_TYPE)

    def test_list_by_prefix(self):
        prefix = "cache/images/%s/" % self.id().rsplit(".", 1)[1]
        for i in range(5):
            self.tool("put", prefix + "r%d.json" % i, self.file("r", b"x" * (i + 1)), "application/json")
        self.tool("put", "cache/other.json", self.file("o", b"o"), "application/json")
        listed = self.listed(prefix)
        self.assertEqual(sorted(listed), [prefix + "r%d.json" % i for i in range(5)])
        self.assertEqual([listed[k]["size"] for k in sorted(listed)], [1, 2, 3, 4, 5])
        now = time.time()
        for o in listed.values():
            self.assertLess(abs(o["modified"] - now), 600, o)
        self.assertEqual(self.listed(prefix + "nothing"), {})


class FilesystemContractTest(Contract, TestCase):
    remote = False

    def settings(self):
        return {"NIXERY_STORAGE_BACKEND": "filesystem", "STORAGE_PATH": str(self.work / "storage")}


class StoreContract(Contract):
    """The contract against a store server that make_server() gives, started
    once for the class."""

    @classmethod
    def setUpClass(cls):
        server = cls.make_server()  # may skip the class: before any set-up
        super().setUpClass()
        cls.server = server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        super().tearDownClass()

    def settings(self):
        return self.server.settings()


def make_s3rver():
    if ensure_s3rver() is None:
        raise unittest.SkipTest("s3rver cannot be installed (npm missing)")
    return S3rver()


class RemoteContract(StoreContract):
    """What only object stores need: surviving a cut connection, and the
    atomic publication of uploads that never finish."""

    def settings_at(self, port):
        return self.server.settings(port)

    def through_proxy(self, proxy):
        return self.server.settings(proxy.port)

    def test_located_url_serves_get_only(self):
        # Signatures cover the method: a HEAD on a URL signed for GET is
        # refused by the store, which is why the registry answers HEAD
        # itself.
        data = b"get only"
        key = "layers/" + hashlib.sha256(data).hexdigest()
        self.tool("put", key, self.file("g", data), LAYER_TYPE)
        location = json.loads(self.tool("locate", key).stdout)["location"]
        with self.urlopen(location) as r:
            self.assertEqual(r.read(), data)
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.urlopen(urllib.request.Request(location, method="HEAD"))
        self.assertEqual(e.exception.code, 403)

    def test_a_store_that_never_answers_fails_within_the_budget(self):
        hole = BlackHole()
        try:
            started = time.time()
            r = self.tool("exists", "layers/x", settings=self.settings_at(hole.port), check=False, timeout=300)
            took = time.time() - started
        finally:
            hole.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        message = r.stderr.decode().strip()
        self.assertIn("timed out", message)
        self.assertWellWorded(message, "layers/x")
        # Four attempts of 30 s each would be two minutes.
        self.assertLess(took, BUDGET + 10)
        self.assertGreater(took, BUDGET - 5)

    def test_interrupted_upload_leaves_nothing(self):
        key = "layers/interrupted-" + self.big_sha
        proxy = FaultProxy(self.server.port)
        try:
            proxy.stall_after(12 * 1024 * 1024)  # in the middle of the second part / chunk
            env = base_environment()
            env.update(self.through_proxy(proxy))
            env["NIXERY_STATE_DIR"] = str(self.state)
            upload = subprocess.Popen([str(STORAGE_TOOL), "persist", key, str(self.big), LAYER_TYPE],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.assertTrue(proxy.tripped.wait(60), "the upload never reached the stall point")
            upload.send_signal(signal.SIGKILL)  # the worker dies mid-upload
            upload.wait()
        finally:
            proxy.close()
        self.assertFalse(self.exists(key))
        self.assertNotIn(key, self.listed("layers/"))
        r = self.tool("fetch", key, check=False)
        self.assertEqual(r.returncode, 3)

    def test_failed_upload_leaves_nothing(self):
        key = "layers/failed-" + self.big_sha
        proxy = FaultProxy(self.server.port)
        proxy.drop_after(12 * 1024 * 1024)
        try:
            # Every byte past the limit is swallowed: retries fail too.
            r = storage_tool(self.through_proxy(proxy), "persist", key, self.big, LAYER_TYPE,
                             state_dir=self.state, check=False, timeout=600)
        finally:
            proxy.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertWellWorded(r.stderr.decode().strip(), key)
        self.assertFalse(self.exists(key))
        self.assertNotIn(key, self.listed("layers/"))

    def test_cut_connection_is_retried(self):
        key = "layers/retried-" + self.big_sha
        proxy = FaultProxy(self.server.port)
        try:
            proxy.cut_after(12 * 1024 * 1024)
            storage_tool(self.through_proxy(proxy), "persist", key, self.big, LAYER_TYPE, state_dir=self.state)
            self.assertTrue(proxy.tripped.is_set(), "the connection was never cut")
        finally:
            proxy.close()
        self.assertEqual(hashlib.sha256(self.tool("fetch", key).stdout).hexdigest(), self.big_sha)

    def test_unreachable_store_fails_fast_and_says_where(self):
        port = free_port()  # nothing listens here
        settings = self.settings_at(port)
        started = time.time()
        r = self.tool("check", settings=settings, check=False)
        self.assertEqual(r.returncode, 1)
        message = r.stderr.decode()
        self.assertIn("127.0.0.1:%d" % port, message)
        self.assertIn(self.server.bucket, message)
        self.assertIn("connect", message.lower())
        r = self.tool("exists", "layers/x", settings=settings, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertWellWorded(r.stderr.decode().strip(), "layers/x")
        self.assertLess(time.time() - started, 20)


@unittest.skipUnless(have("node") or have("npm"), "node and npm are needed for s3rver")
class S3ContractTest(RemoteContract, TestCase):
    make_server = staticmethod(make_s3rver)

    def test_refused_credentials(self):
        r = self.tool("check", settings=self.server.settings(AWS_ACCESS_KEY_ID="NOT-A-KEY"), check=False)
        self.assertEqual(r.returncode, 1)
        message = r.stderr.decode()
        self.assertIn("s3://nixery-test/", message)
        self.assertIn("HTTP 403: InvalidAccessKeyId", message)
        self.assertIn("AWS_ACCESS_KEY_ID", message)

    def test_missing_bucket(self):
        r = self.tool("check", settings=self.server.settings(S3_BUCKET="no-such-bucket"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NoSuchBucket", r.stderr.decode())

    def test_signatures_are_checked(self):
        # The proxy in front of s3rver recomputes every signature.
        r = self.tool("check", settings=self.server.settings(AWS_SECRET_ACCESS_KEY="not-the-secret"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 403: SignatureDoesNotMatch", r.stderr.decode())
        self.tool("check")
        requests = self.server.requests()
        self.assertTrue(requests and all(e["auth"] in ("header", "presigned") for e in requests
                                         if e["path"].startswith("/nixery-test")), requests)

    def test_single_put_of_a_blob_carries_its_checksum(self):
        data = b"checked by the store"
        key = "layers/" + hashlib.sha256(data).hexdigest()
        self.tool("persist", key, self.file("c", data), LAYER_TYPE)
        self.tool("put", "cache/checksum-record", self.file("r", data), "application/json")
        puts = {e["path"]: e for e in self.server.requests() if e["method"] == "PUT"}
        self.assertTrue(puts["/nixery-test/" + key]["checksum"])
        self.assertFalse(puts["/nixery-test/cache/checksum-record"]["checksum"], "records are not blobs")
        # A body that is not what its key names is refused, as S3 does.
        wrong = "layers/" + hashlib.sha256(b"something else").hexdigest()
        r = self.tool("persist", wrong, self.file("w", data), LAYER_TYPE, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 400: BadDigest", r.stderr.decode())
        self.assertFalse(self.exists(wrong))

    def test_a_store_that_refuses_checksum_headers(self):
        # Backblaze B2 (and Google's S3 interoperability API) answer 400
        # "Unsupported header 'x-amz-checksum-sha256'": blobs must still
        # be stored there, without the header.
        self.server.refuse_checksums(True)
        try:
            self.tool("check")
            data = b"stored where checksums are refused"
            key = "layers/" + hashlib.sha256(data).hexdigest()
            r = self.tool("persist", key, self.file("b2", data), LAYER_TYPE, check=False)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertTrue(self.exists(key))
        finally:
            self.server.refuse_checksums(False)

    def completions(self, key, expected):
        """The statuses the proxy logged for CompleteMultipartUpload of `key`,
        waiting up to 5 s for `expected` of them: the proxy logs a request
        only after answering it, so the client may be done first."""
        deadline = time.time() + 5
        while True:
            found = [str(e["status"]) for e in self.server.requests()
                     if e["method"] == "POST" and e["path"].endswith(key) and "uploadId" in e["query"]]
            if len(found) >= expected or time.time() > deadline:
                return found
            time.sleep(0.05)

    def test_an_error_in_a_200_to_complete_multipart_upload(self):
        # S3 may answer 200 and report an error in the body; AWS asks for
        # the completion to be tried again.
        self.addCleanup(self.server.fail_completions, 0)
        key = "layers/retried-complete-" + self.big_sha
        self.server.fail_completions(1)
        self.tool("persist", key, self.big, LAYER_TYPE)
        self.assertEqual(self.completions(key, 2), ["200", "200"])
        self.assertEqual(hashlib.sha256(self.tool("fetch", key).stdout).hexdigest(), self.big_sha)
        # Every try reports an error: the upload fails and leaves nothing.
        key = "layers/failed-complete-" + self.big_sha
        self.server.fail_completions(4)
        r = self.tool("persist", key, self.big, LAYER_TYPE, check=False)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertIn("complete multipart upload", r.stderr.decode())
        self.assertIn("InternalError", r.stderr.decode())
        self.assertFalse(self.exists(key))

    def test_a_lost_answer_to_complete_multipart_upload(self):
        # The completion succeeds but its answer is lost; the retry finds
        # the upload gone (NoSuchUpload) and the object there.
        key = "layers/lost-answer-" + self.big_sha
        self.server.lose_complete_answers(1)
        self.tool("persist", key, self.big, LAYER_TYPE)
        # The retry's 404 may be logged before the lost answer's connection
        # is shut down.
        self.assertCountEqual(self.completions(key, 2), ["lost 200", "404"])
        self.assertEqual(json.loads(self.tool("stat", key).stdout)["size"], BIG)


@unittest.skipUnless(have("node") or have("npm"), "node and npm are needed for s3rver")
class S3VirtualHostContractTest(StoreContract, TestCase):
    """Virtual-host addressing ("<bucket>.s3.test"), signed and checked by
    the proxy, reached through it as http_proxy since no such name
    resolves."""

    make_server = staticmethod(make_s3rver)

    def settings(self):
        return self.server.virtual_host_settings()

    def urlopen(self, request):
        return self.server.opener().open(request, timeout=30)

    def test_requests_name_the_bucket_in_the_host(self):
        self.tool("check")
        hosts = {e["host"] for e in self.server.requests() if e.get("auth") == "header"}
        self.assertEqual(hosts, {"nixery-test.s3.test"})
        location = json.loads(self.tool("locate", "cache/x").stdout)["location"]
        self.assertTrue(location.startswith("http://nixery-test.s3.test/cache/x?X-Amz-"), location)

    def test_an_ip_endpoint_is_refused_at_start_up(self):
        settings = self.server.settings(S3_PATH_STYLE="false")
        r = self.tool("check", settings=settings, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("set S3_PATH_STYLE=true", r.stderr.decode())


@unittest.skipUnless(have("openssl"), "openssl is needed to make a service-account key")
class GcsContractTest(RemoteContract, TestCase):
    @classmethod
    def make_server(cls):
        # A small page size makes listing follow nextPageToken.
        return GcsServer("nixery-test", "--page-size", "2")

    def test_requests_carry_an_issued_token(self):
        self.tool("put", "cache/token-check", self.file("t", b"t"), "application/json")
        requests = self.server.requests()
        self.assertTrue(any(r["path"] == "/token" and r["status"] == 200 for r in requests))
        api = [r for r in requests if r["path"].startswith(("/storage/", "/upload/"))]
        self.assertTrue(api)
        self.assertTrue(all(r["bearer"] for r in api), api)
        self.assertFalse(any(r["status"] == 401 for r in api), api)

    def test_large_blobs_use_a_resumable_upload(self):
        key = "layers/resumable-" + self.big_sha
        self.tool("persist", key, self.big, LAYER_TYPE)
        uploads = [r for r in self.server.requests() if r["path"].startswith("/upload/")]
        self.assertTrue(any("upload_id" in r["query"] and r["status"] == 308 for r in uploads))
        self.assertTrue(any("upload_id" in r["query"] and r["status"] == 200 for r in uploads))

    def test_server_errors_are_retried(self):
        self.server.fail_next(503, 2)
        self.tool("put", "cache/retried", self.file("r", b"r"), "application/json")
        self.assertEqual(self.tool("fetch", "cache/retried").stdout, b"r")
        statuses = [r["status"] for r in self.server.requests() if r["path"].startswith(("/storage/", "/upload/"))]
        self.assertIn(503, statuses)

    def test_refused_credentials(self):
        settings = self.server.settings(GOOGLE_APPLICATION_CREDENTIALS=str(self.server.wrong_key_file))
        r = self.tool("check", settings=settings, check=False)
        self.assertEqual(r.returncode, 1)
        message = r.stderr.decode()
        self.assertIn("gs://nixery-test/", message)
        self.assertIn("/token", message)
        self.assertIn("Invalid JWT Signature", message)

    def test_missing_bucket(self):
        r = self.tool("check", settings=self.server.settings(GCS_BUCKET="no-such-bucket"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr.decode())
        self.assertIn("GCS_BUCKET", r.stderr.decode())

    def test_chunks_without_progress_count_as_failures(self):
        key = "layers/stalled-" + self.big_sha
        # A session that keeps nothing of what it is sent: four chunks in a
        # row without progress end the upload, instead of looping forever.
        self.server.stall_chunks(1000000)
        try:
            started = time.time()
            r = self.tool("persist", key, self.big, LAYER_TYPE, check=False, timeout=120)
        finally:
            self.server.stall_chunks(0)
        self.assertEqual(r.returncode, 1, r.stderr)
        message = r.stderr.decode().strip()
        self.assertIn("failed after 4 attempts: the session kept nothing of the chunk at 0", message)
        self.assertWellWorded(message, key)
        self.assertLess(time.time() - started, 60)
        self.assertFalse(self.exists(key))
        # Progress between stalls resets the count.
        self.server.stall_chunks(3)
        self.tool("persist", key, self.big, LAYER_TYPE)
        self.assertEqual(json.loads(self.tool("stat", key).stdout)["size"], BIG)

    def test_a_quoted_content_type_survives_a_resumable_upload(self):
        key = "layers/quoted-" + self.big_sha
        content_type = 'application/x-test; name="a \\"quoted\\" value"'
        self.tool("persist", key, self.big, content_type)
        self.assertEqual(json.loads(self.tool("stat", key).stdout)["content_type"], content_type)

    def test_a_token_endpoint_that_never_answers(self):
        hole = BlackHole()
        key_file = self.work / "black-hole-key.json"
        self.server.write_key_file(key_file, self.server.dir / "key.pem", hole.endpoint() + "/token")
        try:
            started = time.time()
            r = self.tool("check", settings=self.server.settings(GOOGLE_APPLICATION_CREDENTIALS=str(key_file)),
                          check=False)
            took = time.time() - started
        finally:
            hole.close()
        self.assertEqual(r.returncode, 1)
        message = r.stderr.decode()
        self.assertIn("get an access token from \"%s/token\" failed" % hole.endpoint(), message)
        self.assertIn("timed out", message)
        self.assertLess(took, BUDGET + 10)
        self.assertEqual(hole.accepted, 1, "one attempt: the budget leaves no time for another")

    def test_signed_urls_are_checked(self):
        data = b"signed"
        key = "layers/" + hashlib.sha256(data).hexdigest()
        self.tool("put", key, self.file("s", data), LAYER_TYPE)
        location = json.loads(self.tool("locate", key).stdout)["location"]
        self.assertIn("X-Goog-Algorithm=GOOG4-RSA-SHA256", location)
        self.assertIn("X-Goog-Expires=300", location)
        for bad in (location.replace("X-Goog-Expires=300", "X-Goog-Expires=301"), location.split("?")[0]):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(bad, timeout=30)
            self.assertEqual(e.exception.code, 403)


@unittest.skipUnless(have("openssl"), "openssl is needed to make a service-account key")
class GcsEmulatorContractTest(Contract, TestCase):
    """STORAGE_EMULATOR_HOST: no authentication at all, and blobs served
    from public URLs since there is no key to sign with."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = GcsServer("nixery-test", "--no-auth", "--public-read").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        super().tearDownClass()

    def settings(self):
        return {"NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": "nixery-test",
                "STORAGE_EMULATOR_HOST": "127.0.0.1:%d" % self.server.port}

    def test_no_credentials_are_sent(self):
        self.tool("put", "cache/anonymous", self.file("a", b"a"), "application/json")
        requests = self.server.requests()
        self.assertFalse(any(r["path"] == "/token" for r in requests))
        self.assertFalse(any(r["bearer"] for r in requests), requests)
        location = json.loads(self.tool("locate", "cache/anonymous").stdout)["location"]
        self.assertEqual(location, "http://127.0.0.1:%d/nixery-test/cache/anonymous" % self.server.port)


@unittest.skipUnless(have("openssl"), "openssl is needed to make a service-account key")
class GcsMetadataServerTest(TestCase):
    """Without GOOGLE_APPLICATION_CREDENTIALS, tokens come from the GCE
    metadata server (GCE_METADATA_HOST), and blobs from public URLs."""

    def test_tokens_from_the_metadata_server(self):
        server = GcsServer("nixery-test", "--metadata", "--public-read").start()
        state = Path(tempfile.mkdtemp(prefix="nixery-metadata-"))
        try:
            settings = {"NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": "nixery-test",
                        "GCS_ENDPOINT": server.endpoint(), "GCE_METADATA_HOST": "127.0.0.1:%d" % server.port}
            storage_tool(settings, "check-serving", state_dir=state)
            path = state / "x"
            path.write_bytes(b"x")
            storage_tool(settings, "put", "cache/x", path, "application/json", state_dir=state)
            requests = server.requests()
            self.assertTrue(any(r["path"].startswith("/computeMetadata/") and r["status"] == 200
                                for r in requests))
            self.assertTrue(all(r["bearer"] for r in requests if r["path"].startswith(("/storage/", "/upload/"))))
            location = json.loads(storage_tool(settings, "locate", "cache/x", state_dir=state).stdout)["location"]
            self.assertNotIn("X-Goog-Signature", location)
            with urllib.request.urlopen(location, timeout=30) as r:
                self.assertEqual(r.read(), b"x")
        finally:
            server.cleanup()
            shutil.rmtree(state, ignore_errors=True)

    def test_a_bucket_that_refuses_unsigned_reads_is_refused_by_the_server(self):
        # Tokens work, so listing and writing do; but the blob URLs clients
        # get are unsigned, and this bucket answers them 403.
        server = GcsServer("nixery-test", "--metadata").start()
        state = Path(tempfile.mkdtemp(prefix="nixery-metadata-"))
        try:
            settings = {"NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": "nixery-test",
                        "GCS_ENDPOINT": server.endpoint(), "GCE_METADATA_HOST": "127.0.0.1:%d" % server.port}
            # gc and nixery build hand out no URLs: their check passes.
            storage_tool(settings, "check", state_dir=state)
            # The server logs a request after answering it: wait for the
            # deletion of that check's probe before counting from here.
            deadline = time.time() + 5
            while not any(x["method"] == "DELETE" for x in server.requests()) and time.time() < deadline:
                time.sleep(0.05)
            before = len(server.requests())
            r = storage_tool(settings, "check-serving", state_dir=state, check=False)
            self.assertNotEqual(r.returncode, 0, r)
            err = r.stderr.decode()
            self.assertIn("clients get blobs from unsigned URLs", err)
            self.assertIn("GOOGLE_APPLICATION_CREDENTIALS", err)
            self.assertIn("HTTP 403", err)
            # Both probes (of check() and of the read check) went away.
            deleted = [x for x in server.requests()[before:] if x["method"] == "DELETE"]
            self.assertEqual(len(deleted), 2, server.requests()[before:])
        finally:
            server.cleanup()
            shutil.rmtree(state, ignore_errors=True)


class GcsServerSigningTest(TestCase):
    """The test server recomputes signatures as Google documents them: its
    string to sign reproduces Google's published V4 vectors."""

    def test_conformance_vectors(self):
        import urllib.parse
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        import gcs_server
        data = ROOT / "tests" / "unit" / "data"
        account = json.loads((data / "gcs_v4_service_account.json").read_text())
        public = serialization.load_pem_private_key(account["private_key"].encode(), None).public_key()
        cases = json.loads((data / "gcs_v4_signatures.json").read_text())["signingV4Tests"]
        for case in cases:
            url = urllib.parse.urlsplit(case["expectedUrl"])
            pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
            signature = next(v for k, v in pairs if k.lower() == "x-goog-signature")
            pairs = [(k, v) for k, v in pairs if k.lower() != "x-goog-signature"]
            headers = {k.lower(): v for k, v in case.get("headers", {}).items()}
            headers["host"] = url.netloc
            names = dict(pairs)["X-Goog-SignedHeaders"].split(";")
            sts = gcs_server.v4_string_to_sign(case["method"], url.path or "/", pairs, headers, names)
            public.verify(bytes.fromhex(signature), sts.encode(), padding.PKCS1v15(), hashes.SHA256())
