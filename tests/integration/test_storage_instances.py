"""Whole instances on object storage: two instances (own state directories
and SQLite files) sharing one bucket, where the second serves what the
first built without packing a layer; a real client (skopeo) pulling through
the redirect to the store; and a store that is unreachable at start-up or
goes away while serving. For S3 (s3rver) and GCS (gcs_server.py)."""

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

from harness import NIXERY, Instance, TestCase, base_environment, free_port, have, in_rootfs, run, skopeo_copy, unpack
from object_stores import GcsServer, S3rver, ensure_s3rver

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class SharedBucket:
    """Mixed into a TestCase per store; the subclass starts `server`."""

    signature_parameter = None

    # One bucket per test, so each starts from an empty store.
    BUCKETS = ("share", "layers", "pull", "digests", "tokens")

    def instance(self, bucket, **extra):
        settings = dict(self.server.settings(bucket=bucket), STORAGE_PATH=None)
        settings.update(extra)
        return Instance(**settings)

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
            # And it serves the first one's layers (by redirect to the bucket).
            for digest in layers:
                self.assertEqual(second.head("/v2/%s/blobs/%s" % (name, digest)).status, 307)

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
            with urllib.request.urlopen(location, timeout=30) as blob:
                self.assertEqual("sha256:" + hashlib.sha256(blob.read()).hexdigest(), layer)

            digest = manifest.header("Docker-Content-Digest")
            r = inst.get("/v2/hello/manifests/" + digest)
            self.assertEqual(r.status, 307, r)
            with urllib.request.urlopen(r.header("Location"), timeout=30) as m:
                self.assertEqual(m.headers.get("Content-Type"), MANIFEST_TYPE)
                self.assertEqual(m.read(), manifest.body)

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
