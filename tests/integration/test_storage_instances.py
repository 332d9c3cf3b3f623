"""Whole instances on object storage: two instances (own state directories
and SQLite files) sharing one bucket, where the second serves what the
first built without packing a layer; a real client (skopeo) pulling through
the redirect to the store; HEAD answered by the registry (the redirect
target is signed for GET only); and a store that is unreachable at
start-up, goes away while serving, or stops answering. For S3 (s3rver
behind the SigV4-checking proxy) and GCS (gcs_server.py); and, for the
filesystem, how a manifest by digest is told from a layer."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from harness import (NIXERY, Instance, TestCase, base_environment, free_port, have, in_rootfs, make_package_set, run,
                     skopeo_copy, unpack)
from object_stores import FaultProxy, GcsServer, S3rver, ensure_s3rver, storage_tool

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# What the registry says a blob is (src/core/manifest.hpp); the store keeps
# the layer's type, which a client following the redirect gets.
BLOB_TYPE = "application/octet-stream"
# What a storage call may take (src/http/retry.hpp).
BUDGET = 30

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


class SharedBucket:
    """Mixed into a TestCase per store; the subclass starts `server`."""

    signature_parameter = None

    # One bucket per test, so each starts from an empty store.
    BUCKETS = ("share", "layers", "pull", "digests", "tokens", "big", "stuck")

    def instance(self, bucket, **extra):
        settings = dict(self.server.settings(bucket=bucket), STORAGE_PATH=None)
        settings.update(extra)
        # One package set for the test's instances: the images' labels name
        # its directory, so instances with their own would build their own.
        if not hasattr(self, "_package_set"):
            work = Path(tempfile.mkdtemp(prefix="nixery-pkgs-"))
            self.addCleanup(shutil.rmtree, work, True)
            self._package_set = make_package_set(work)
        return Instance(package_set=self._package_set, **settings)

    def urlopen(self, request):
        """Opens a URL the registry redirected to, as a client would."""
        return urllib.request.urlopen(request, timeout=30)

    def assertHeadAnswered(self, inst, path, digest, length, content_type):
        """HEAD is answered by the registry: 200 with what a client checks,
        never a redirect to a URL signed for GET."""
        r = inst.head(path)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("Location"))
        self.assertEqual(r.header("Docker-Content-Digest"), digest)
        self.assertEqual(r.header("Content-Length"), str(length))
        self.assertEqual(r.header("Content-Type"), content_type)
        self.assertEqual(r.body, b"")

    def test_second_instance_reuses_the_first_ones_work(self):
        name = "shell/hello"
        with self.instance("share") as first:
            built = first.manifest(name)
            self.assertEqual(built.status, 200, built)
            self.assertTrue(first.packed_layers(), "the first instance packs the layers")
            layers = [l["digest"] for l in built.json()["layers"]]
        with self.instance("share") as second:
            served = second.manifest(name)
            self.assertEqual(served.status, 200, served)
            self.assertEqual(served.header("Docker-Content-Digest"), built.header("Docker-Content-Digest"))
            self.assertEqual(served.body, built.body)
            self.assertEqual(second.packed_layers(), [], "the second instance packs nothing")
            record = second.builds(name)[-1]
            self.assertEqual(record["layers_built"], 0, record)
            self.assertEqual(record["layers_reused"], len(layers), record)
            # And it serves the first one's layers (by redirect to the bucket)
            # and its manifest by digest, whose type the bucket kept.
            for layer in built.json()["layers"]:
                path = "/v2/%s/blobs/%s" % (name, layer["digest"])
                self.assertEqual(second.get(path).status, 307)
                self.assertHeadAnswered(second, path, layer["digest"], layer["size"], BLOB_TYPE)
            digest = built.header("Docker-Content-Digest")
            path = "/v2/%s/manifests/%s" % (name, digest)
            self.assertEqual(second.get(path).status, 307)
            self.assertHeadAnswered(second, path, digest, len(built.body), MANIFEST_TYPE)
            # The configuration is typed as on the first, and a manifest is
            # no blob here either.
            config = built.json()["config"]
            self.assertHeadAnswered(second, "/v2/%s/blobs/%s" % (name, config["digest"]),
                                    config["digest"], config["size"], CONFIG_TYPE)
            self.assertRegistryError(second.get("/v2/%s/blobs/%s" % (name, digest)), 404,
                                     "BLOB_UNKNOWN")

    def test_a_layer_packed_by_one_instance_is_reused_by_another(self):
        # Different images, one shared layer: the second image's build on
        # the other instance finds the layer through the shared record.
        with self.instance("layers") as first:
            a = first.manifest("app-a/app-b").json()
            packed_first = set(first.packed_layers())
        with self.instance("layers") as second:
            b = second.manifest("app-a/app-c").json()
            packed_second = set(second.packed_layers())
            shared = {l["digest"] for l in a["layers"]} & {l["digest"] for l in b["layers"]}
            self.assertGreaterEqual(len(shared), 2)
            self.assertFalse(shared & packed_second, "shared layers are not packed again")
            self.assertTrue(shared <= packed_first)
            record = second.builds("app-a/app-c")[-1]
            self.assertGreaterEqual(record["layers_reused"], len(shared))

    @unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
    def test_pull_follows_the_redirect(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-store-pull-"))
        try:
            with self.instance("pull") as inst:
                skopeo_copy(inst, "shell/hello", "latest", work / "layout", "hello")
                rootfs = unpack(work / "layout", "hello", work / "bundle")
                self.assertEqual(in_rootfs(rootfs, "/bin/hello"), "Hello, world!\n")
                redirects = [r for r in inst.log_records() if r.get("status") == 307]
                self.assertTrue(redirects, "blobs came by redirect")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_blobs_and_manifests_by_digest_redirect_to_signed_urls(self):
        with self.instance("digests") as inst:
            manifest = inst.manifest("hello")
            self.assertEqual(manifest.status, 200, manifest)
            layer = manifest.json()["layers"][0]["digest"]
            r = inst.get("/v2/hello/blobs/" + layer)
            self.assertEqual(r.status, 307, r)
            location = r.header("Location")
            self.assertIn(self.signature_parameter, location)
            self.assertEqual(r.header("Docker-Content-Digest"), layer)
            with self.urlopen(location) as blob:
                body = blob.read()
                self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), layer)
            # The store refuses HEAD on the URL signed for GET; the registry
            # answers HEAD itself.
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.urlopen(urllib.request.Request(location, method="HEAD"))
            self.assertEqual(e.exception.code, 403)
            self.assertHeadAnswered(inst, "/v2/hello/blobs/" + layer, layer, len(body), BLOB_TYPE)

            digest = manifest.header("Docker-Content-Digest")
            r = inst.get("/v2/hello/manifests/" + digest)
            self.assertEqual(r.status, 307, r)
            with self.urlopen(r.header("Location")) as m:
                self.assertEqual(m.headers.get("Content-Type"), MANIFEST_TYPE)
                self.assertEqual(m.read(), manifest.body)
            self.assertHeadAnswered(inst, "/v2/hello/manifests/" + digest, digest, len(manifest.body),
                                    MANIFEST_TYPE)

            unknown = inst.get("/v2/hello/blobs/sha256:" + "0" * 64)
            self.assertRegistryError(unknown, 404, "BLOB_UNKNOWN")
            # The signed URL is logged without its query.
            log = inst.log_text()
            self.assertNotIn(self.signature_parameter, log)
            self.assertIn("?<redacted>", log)

    def test_store_going_away_gives_registry_errors_quickly(self):
        server = self.make_server().start()
        try:
            settings = dict(server.settings(), STORAGE_PATH=None)
            with Instance(expected_errors=("serving stored object failed", "build failed"), **settings) as inst:
                manifest = inst.manifest("hello")
                self.assertEqual(manifest.status, 200, manifest)
                layer = manifest.json()["layers"][0]["digest"]
                server.stop()
                started = time.time()
                r = inst.get("/v2/hello/blobs/" + layer, timeout=60)
                self.assertRegistryError(r, 500, "INTERNAL_ERROR", layer)
                r = inst.manifest("app-b/hardlinks")
                self.assertEqual(r.header("Content-Type"), "application/json", r)
                self.assertGreaterEqual(r.status, 500, r)
                self.assertLess(time.time() - started, 30)
        finally:
            server.cleanup()

    def test_a_large_blob_asked_for_as_a_manifest(self):
        # Stored by another instance (no local record), larger than any
        # response the registry would read: its type comes from the store's
        # metadata, not from loading it.
        state = Path(tempfile.mkdtemp(prefix="nixery-big-blob-"))
        try:
            blob = state / "blob"
            digest = hashlib.sha256()
            with open(blob, "wb") as f:
                for _ in range(65):
                    chunk = os.urandom(1 << 20)
                    digest.update(chunk)
                    f.write(chunk)
            digest = "sha256:" + digest.hexdigest()
            settings = self.server.settings(bucket="big")
            storage_tool(settings, "persist", "layers/" + digest[7:], blob, LAYER_TYPE, state_dir=state)
            with self.instance("big") as inst:
                r = inst.get("/v2/hello/manifests/" + digest)
                self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN")
                self.assertEqual(inst.get("/v2/hello/blobs/" + digest).status, 307)
                # HEAD says the type the store kept, as the redirect's GET does.
                self.assertHeadAnswered(inst, "/v2/hello/blobs/" + digest, digest, 65 << 20, LAYER_TYPE)
        finally:
            shutil.rmtree(state, ignore_errors=True)

    def test_a_store_that_stops_answering_fails_requests_within_the_budget(self):
        proxy = FaultProxy(self.server.port)
        try:
            with self.instance("stuck", expected_errors=("serving stored object failed",),
                               **self.through(proxy)) as inst:
                manifest = inst.manifest("hello")
                self.assertEqual(manifest.status, 200, manifest)
                layer = manifest.json()["layers"][0]["digest"]
                proxy.stall_after(0)  # connections are accepted, nothing is answered
                started = time.time()
                r = inst.get("/v2/hello/blobs/" + layer, timeout=300)
                took = time.time() - started
                self.assertRegistryError(r, 500, "INTERNAL_ERROR", layer)
                # Without a budget: four attempts of 30 s each.
                self.assertLess(took, BUDGET + 10)
                proxy.release()
        finally:
            proxy.close()

    def through(self, proxy):
        """Settings that reach the store through `proxy`."""
        return {"S3_ENDPOINT" if "S3_BUCKET" in self.server.settings() else "GCS_ENDPOINT":
                self.server.endpoint(proxy.port)}

    def start_and_fail(self, settings):
        """Runs `nixery run` with `settings`; returns its exit code and log."""
        inst = Instance(**dict(settings, STORAGE_PATH=None))
        try:
            proc = subprocess.run([str(NIXERY), "run"], env=inst.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=120)
            return proc.returncode, proc.stdout.decode()
        finally:
            shutil.rmtree(inst.dir, ignore_errors=True)

    def test_start_up_fails_when_the_store_is_unreachable(self):
        port = free_port()
        code, out = self.start_and_fail(self.server.settings(port))
        self.assertEqual(code, 1, out)
        self.assertIn("cannot start", out)
        self.assertIn("127.0.0.1:%d" % port, out)
        self.assertIn(self.server.bucket, out)


@unittest.skipUnless(have("node") or have("npm"), "node and npm are needed for s3rver")
class S3InstancesTest(SharedBucket, TestCase):
    signature_parameter = "X-Amz-Signature="

    @classmethod
    def setUpClass(cls):
        if ensure_s3rver() is None:
            raise unittest.SkipTest("s3rver cannot be installed (npm missing)")
        cls.server = S3rver(more_buckets=cls.BUCKETS).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def make_server(self):
        return S3rver()

    def test_start_up_fails_when_credentials_are_refused(self):
        code, out = self.start_and_fail(self.server.settings(AWS_ACCESS_KEY_ID="NOT-A-KEY"))
        self.assertEqual(code, 1, out)
        self.assertIn("InvalidAccessKeyId", out)
        self.assertIn("AWS_ACCESS_KEY_ID", out)


@unittest.skipUnless(have("node") or have("npm"), "node and npm are needed for s3rver")
class S3VirtualHostInstancesTest(TestCase):
    """An instance on virtual-host addressing ("<bucket>.s3.test", through
    the SigV4-checking proxy as http_proxy): blobs and manifests by digest,
    GET redirected to presigned URLs, HEAD answered."""

    def test_blobs_and_manifests_by_digest(self):
        if ensure_s3rver() is None:
            raise unittest.SkipTest("s3rver cannot be installed (npm missing)")
        server = S3rver().start()
        try:
            settings = dict(server.virtual_host_settings(), STORAGE_PATH=None)
            with Instance(**settings) as inst:
                manifest = inst.manifest("hello")
                self.assertEqual(manifest.status, 200, manifest)
                for layer in manifest.json()["layers"]:
                    r = inst.get("/v2/hello/blobs/" + layer["digest"])
                    self.assertEqual(r.status, 307, r)
                    self.assertTrue(r.header("Location").startswith("http://nixery-test.s3.test/layers/"))
                    with server.opener().open(r.header("Location"), timeout=30) as blob:
                        self.assertEqual("sha256:" + hashlib.sha256(blob.read()).hexdigest(), layer["digest"])
                    r = inst.head("/v2/hello/blobs/" + layer["digest"])
                    self.assertEqual((r.status, r.header("Content-Length")), (200, str(layer["size"])))
            self.assertTrue(all(e["host"] == "nixery-test.s3.test" for e in server.requests()
                                if e.get("auth") == "header"))
        finally:
            server.cleanup()


@unittest.skipUnless(have("openssl"), "openssl is needed to make a service-account key")
class GcsInstancesTest(SharedBucket, TestCase):
    signature_parameter = "X-Goog-Signature="

    @classmethod
    def setUpClass(cls):
        cls.server = GcsServer(more_buckets=cls.BUCKETS).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def make_server(self):
        return GcsServer()

    def test_tokens_are_cached(self):
        seen = len(self.server.requests())
        with self.instance("tokens") as inst:
            self.assertEqual(inst.manifest("app-b").status, 200)
            self.assertEqual(inst.manifest("app-c").status, 200)
        requests = self.server.requests()[seen:]
        tokens = [r for r in requests if r["path"] == "/token"]
        api = [r for r in requests if r["path"].startswith(("/storage/", "/upload/"))]
        # One token for the master's check and one per worker process (2),
        # however many requests their threads make.
        self.assertLessEqual(len(tokens), 3, tokens)
        self.assertGreater(len(api), 3 * len(tokens))

    def test_start_up_fails_when_credentials_are_refused(self):
        code, out = self.start_and_fail(
            self.server.settings(GOOGLE_APPLICATION_CREDENTIALS=str(self.server.wrong_key_file)))
        self.assertEqual(code, 1, out)
        self.assertIn("Invalid JWT Signature", out)


class FilesystemManifestTest(TestCase):
    """The filesystem keeps no content type: a manifest by digest without
    a local record is read to learn its type, but only when it is small
    enough to be one."""

    def test_instances_sharing_a_directory_answer_alike(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-shared-dir-"))
        self.addCleanup(shutil.rmtree, work, True)
        pkgs, storage = make_package_set(work), work / "storage"
        with Instance(package_set=pkgs, STORAGE_PATH=storage) as first, \
                Instance(package_set=pkgs, STORAGE_PATH=storage) as second:
            built = first.manifest("hello")
            self.assertEqual(built.status, 200, built)
            digest, config = built.header("Docker-Content-Digest"), built.json()["config"]
            layer = built.json()["layers"][0]
            for inst in (first, second, second):  # the second time from nginx's link
                for method in ("GET", "HEAD"):
                    r = inst.request(method, "/v2/hello/blobs/" + config["digest"])
                    self.assertEqual((r.status, r.header("Content-Type")), (200, CONFIG_TYPE), r)
                    r = inst.request(method, "/v2/hello/blobs/" + layer["digest"])
                    self.assertEqual((r.status, r.header("Content-Type")), (200, BLOB_TYPE), r)
                self.assertRegistryError(inst.get("/v2/hello/blobs/" + digest), 404, "BLOB_UNKNOWN")
                r = inst.get("/v2/hello/manifests/" + digest)
                self.assertEqual((r.status, r.header("Content-Type")), (200, MANIFEST_TYPE), r)

    @staticmethod
    def peak_memory(pids):
        total = 0
        for pid in pids:
            for line in Path("/proc/%d/status" % pid).read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        return total

    def test_a_large_file_is_not_read_to_learn_its_type(self):
        with Instance() as inst:
            self.assertEqual(inst.get("/v2/").status, 200)
            data = os.urandom(48 << 20)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            (inst.storage / "layers" / digest[7:]).write_bytes(data)
            del data
            # Every worker thread answers once, so each has its memory.
            for _ in range(20):
                inst.get("/v2/hello/manifests/sha256:" + "0" * 64)
            workers = inst.worker_pids()
            before = self.peak_memory(workers)
            for _ in range(4):
                r = inst.get("/v2/hello/manifests/" + digest)
                self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN")
            grown = self.peak_memory(workers) - before
            self.assertLess(grown, 16 << 20, "a worker read the 48 MiB file (%d MiB more)" % (grown >> 20))
            # Served as a blob all the same.
            r = inst.head("/v2/hello/blobs/" + digest)
            self.assertEqual((r.status, r.header("Content-Length")), (200, str(48 << 20)))

            # A small manifest without a record is read and served.
            small = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": []}).encode()
            small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
            (inst.storage / "layers" / small_digest[7:]).write_bytes(small)
            r = inst.get("/v2/hello/manifests/" + small_digest)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), MANIFEST_TYPE)
            self.assertEqual(r.body, small)
