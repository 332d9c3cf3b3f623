"""The registry API through real nginx and the real worker pool, with real
Nix building the test package set: routes, headers, media types, errors."""

import hashlib
import json

from harness import Instance, TestCase

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


class RegistryApiTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instance = Instance(expected_errors=[]).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.instance.__exit__(None, None, None)

    def test_base_endpoint(self):
        for method in ("GET", "HEAD"):
            r = self.instance.request(method, "/v2/")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Docker-Distribution-API-Version"), "registry/2.0")

    def test_manifest_by_tag_then_by_digest(self):
        r = self.instance.manifest("app-a")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), DOCKER_MANIFEST)
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        digest = "sha256:" + hashlib.sha256(r.body).hexdigest()
        self.assertEqual(r.header("Docker-Content-Digest"), digest)
        manifest = r.json()
        self.assertEqual(manifest["mediaType"], DOCKER_MANIFEST)
        self.assertEqual(manifest["config"]["mediaType"], DOCKER_CONFIG)

        # The same manifest by digest, served by nginx from storage.
        by_digest = self.instance.get("/v2/app-a/manifests/" + digest)
        self.assertEqual(by_digest.status, 200, by_digest)
        self.assertEqual(by_digest.body, r.body)
        self.assertEqual(by_digest.header("Content-Type"), DOCKER_MANIFEST)
        self.assertEqual(by_digest.header("Docker-Content-Digest"), digest)
        self.assertEqual(int(by_digest.header("Content-Length")), len(r.body))
        head = self.instance.head("/v2/app-a/manifests/" + digest)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(int(head.header("Content-Length")), len(r.body))

        # The config blob has the config media type; every blob matches its digest.
        config = self.instance.get("/v2/app-a/blobs/" + manifest["config"]["digest"])
        self.assertEqual(config.status, 200)
        self.assertEqual(config.header("Content-Type"), DOCKER_CONFIG)
        self.assertEqual(config.header("Docker-Content-Digest"), manifest["config"]["digest"])
        self.assertEqual("sha256:" + hashlib.sha256(config.body).hexdigest(), manifest["config"]["digest"])
        for layer in manifest["layers"]:
            blob = self.instance.get("/v2/app-a/blobs/" + layer["digest"])
            self.assertEqual(blob.status, 200)
            self.assertEqual(len(blob.body), layer["size"])
            self.assertEqual(int(blob.header("Content-Length")), layer["size"])
            self.assertEqual("sha256:" + hashlib.sha256(blob.body).hexdigest(), layer["digest"])
            self.assertEqual(blob.header("Docker-Content-Digest"), layer["digest"])

    def test_blob_range_and_head(self):
        manifest = self.instance.manifest("app-b").json()
        layer = max(manifest["layers"], key=lambda l: l["size"])
        path = "/v2/app-b/blobs/" + layer["digest"]
        full = self.instance.get(path).body
        part = self.instance.get(path, {"Range": "bytes=10-99"})
        self.assertEqual(part.status, 206)
        self.assertEqual(part.body, full[10:100])
        self.assertEqual(part.header("Content-Range"), "bytes 10-99/%d" % len(full))
        head = self.instance.head(path)
        self.assertEqual(head.status, 200)
        self.assertEqual(int(head.header("Content-Length")), len(full))
        self.assertEqual(head.header("Docker-Content-Digest"), layer["digest"])

    def test_head_then_get_is_one_build(self):
        name = "app-c/hardlinks"
        head = self.instance.head("/v2/%s/manifests/latest" % name)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        get = self.instance.manifest(name)
        self.assertEqual(get.status, 200)
        for header in ("Content-Type", "Content-Length", "Docker-Content-Digest"):
            self.assertEqual(head.header(header), get.header(header), header)
        self.assertEqual(len(self.instance.builds(name)), 1)

    def test_oci_when_asked_for_oci_only(self):
        oci = self.instance.manifest("xorg.xev", accept=OCI_MANIFEST)
        self.assertEqual(oci.status, 200, oci)
        self.assertEqual(oci.header("Content-Type"), OCI_MANIFEST)
        body = oci.json()
        self.assertEqual(body["mediaType"], OCI_MANIFEST)
        self.assertEqual(body["config"]["mediaType"], "application/vnd.oci.image.config.v1+json")
        self.assertTrue(all(l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" for l in body["layers"]))
        by_digest = self.instance.get("/v2/xorg.xev/manifests/" + oci.header("Docker-Content-Digest"))
        self.assertEqual(by_digest.header("Content-Type"), OCI_MANIFEST)

        both = self.instance.manifest("xorg.xev", accept=OCI_MANIFEST + ", " + DOCKER_MANIFEST)
        self.assertEqual(both.header("Content-Type"), DOCKER_MANIFEST)
        none = self.instance.manifest("xorg.xev")
        self.assertEqual(none.header("Content-Type"), DOCKER_MANIFEST)
        # Same layers in both formats: the format is only the wrapping.
        self.assertEqual([l["digest"] for l in body["layers"]], [l["digest"] for l in none.json()["layers"]])
        self.assertEqual(len(self.instance.builds("xorg.xev")), 1)

    def test_repeated_accept_headers_are_all_read(self):
        # podman and skopeo send one Accept line per type; nginx passes each.
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", self.instance.port, timeout=300)
        conn.putrequest("GET", "/v2/xorg.xev/manifests/latest")
        conn.putheader("Accept", "application/vnd.oci.image.index.v1+json")
        conn.putheader("Accept", OCI_MANIFEST)
        conn.endheaders()
        self.assertEqual(conn.getresponse().getheader("Content-Type"), OCI_MANIFEST)
        conn.close()

    def test_long_query_or_accept_is_served_and_cached_quietly(self):
        # nginx's manifest cache key once held the whole request URI and
        # Accept header: past ~4 KiB nginx logged an error per request
        # ("fastcgi_buffer_size 4096 is not enough for cache key").
        self.assertEqual(self.instance.manifest("libgreet").status, 200)
        long_accept = DOCKER_MANIFEST + ", " + ", ".join(["application/x-nixery-test"] * 300)
        for path, accept in (("/v2/libgreet/manifests/latest?x=" + "a" * 6000, DOCKER_MANIFEST),
                             ("/v2/libgreet/manifests/latest", long_accept)):
            r = self.instance.get(path, {"Accept": accept})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), DOCKER_MANIFEST)
        log = (self.instance.state / "nginx-error.log").read_text()
        self.assertNotIn("cache key", log)

    def test_a_tag_with_a_newline_is_not_another_tags_cache_entry(self):
        # The bounded cache key must hold the whole path: PCRE's "." stops
        # at a decoded %0A, which made "latest\nx" nginx's entry of "latest".
        self.assertEqual(self.instance.manifest("libgreet", accept=DOCKER_MANIFEST).status, 200)
        self.assertEqual(self.instance.manifest("libgreet", accept=DOCKER_MANIFEST).status, 200)  # cached now
        r = self.instance.get("/v2/libgreet/manifests/latest%0Ax", {"Accept": DOCKER_MANIFEST})
        self.assertRegistryError(r, 400, "TAG_INVALID")

    def test_a_digest_with_a_newline_is_invalid_also_where_nginx_answers(self):
        # PCRE's "$" also matches before a final newline: nginx's locations
        # for blobs and manifests by digest took "sha256:<hex>\n" as the
        # digest and sent the blob, which the pool refuses as malformed.
        manifest = self.instance.manifest("libgreet", accept=DOCKER_MANIFEST)
        digest = manifest.header("Docker-Content-Digest")
        blob = manifest.json()["layers"][0]["digest"]
        for path in ("/v2/libgreet/blobs/" + blob, "/v2/libgreet/manifests/" + digest):
            self.assertEqual(self.instance.get(path).status, 200)  # nginx's link made
            self.assertEqual(self.instance.get(path).status, 200)
            self.assertRegistryError(self.instance.get(path + "%0A"), 400, "DIGEST_INVALID")
            self.assertRegistryError(self.instance.get(path + "%0a"), 400, "DIGEST_INVALID")

    def test_names_resolve_as_the_seed_describes(self):
        for name in ("7zip", "helloworld", "xorg.xev", "app-a/app-b", "app-b/app-a"):
            r = self.instance.manifest(name)
            self.assertEqual(r.status, 200, (name, r))
        self.assertEqual(self.instance.manifest("app-a/app-b").header("Docker-Content-Digest"),
                         self.instance.manifest("app-b/app-a").header("Docker-Content-Digest"))

    def test_tags_list(self):
        self.assertEqual(self.instance.manifest("libgreet", "v1").status, 200)
        r = self.instance.get("/v2/libgreet/tags/list")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        # A local package set has no revisions: a tag selects nothing, and
        # made-up ones are not recorded (a git source records its refs).
        self.assertEqual(r.json(), {"name": "libgreet", "tags": ["latest"]})
        self.assertEqual(self.instance.get("/v2/never-pulled/tags/list").json()["tags"], ["latest"])
        with self.instance.db() as conn:  # as a git source records a ref
            conn.execute("INSERT OR REPLACE INTO tags (name, tag, last_pulled_at) "
                         "VALUES ('libgreet', 'v1', strftime('%s','now'))")
        self.assertEqual(self.instance.get("/v2/libgreet/tags/list").json()["tags"], ["latest", "v1"])
        page = self.instance.get("/v2/libgreet/tags/list?n=1")
        self.assertEqual(page.json()["tags"], ["latest"])
        self.assertIn("last=latest", page.header("Link"))
        # Following the link: the next page starts after the last one.
        link = page.header("Link")
        follow = self.instance.get(link[link.index("<") + 1:link.index(">")])
        self.assertEqual(follow.json()["tags"], ["v1"])
        self.assertIsNone(follow.header("Link"))
        self.assertEqual(self.instance.get("/v2/libgreet/tags/list?last=v1").json()["tags"], [])
        # The link keeps the page size: with more tags, the next page is as
        # short as the first.
        with self.instance.db() as conn:
            for tag in ("v2", "v3"):
                conn.execute("INSERT OR REPLACE INTO tags (name, tag, last_pulled_at) "
                             "VALUES ('libgreet', ?, strftime('%s','now'))", (tag,))
        link = self.instance.get("/v2/libgreet/tags/list?n=1").header("Link")
        self.assertIn("n=1", link)
        follow = self.instance.get(link[link.index("<") + 1:link.index(">")])
        self.assertEqual(follow.json()["tags"], ["v1"])
        self.assertIn("last=v1", follow.header("Link"))

    def test_unknown_packages_are_named(self):
        r = self.instance.manifest("app-a/nosuchpackage/nothere")
        err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", '"nosuchpackage"', '"nothere"')
        self.assertEqual(sorted(err["detail"]["missing"]), ["nosuchpackage", "nothere"])
        self.assertRegistryError(self.instance.manifest("notapackage"), 404, "MANIFEST_UNKNOWN", "not a package")

    def test_refusing_package_carries_nix_message(self):
        r = self.instance.manifest("refuses")
        self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "refuses", "this package refuses to evaluate")

    def test_invalid_names_tags_and_digests(self):
        self.assertRegistryError(self.instance.manifest("Hello"), 400, "NAME_INVALID", "Hello")
        self.assertRegistryError(self.instance.manifest("a__-b"), 400, "NAME_INVALID")
        self.assertRegistryError(self.instance.get("/v2/-x/tags/list"), 400, "NAME_INVALID")
        # Bytes that are not UTF-8 come back as U+FFFD: the error is JSON.
        self.assertRegistryError(self.instance.get("/v2/%FF%FE/manifests/latest"), 400, "NAME_INVALID",
                                 "\ufffd\ufffd")
        self.assertRegistryError(self.instance.manifest("hello", "-bad"), 400, "TAG_INVALID", "-bad")
        self.assertRegistryError(self.instance.manifest("hello", "a" * 129), 400, "TAG_INVALID")
        self.assertRegistryError(self.instance.get("/v2/hello/blobs/sha256:1234"), 400, "DIGEST_INVALID")
        # A blob by a valid digest under an invalid name: the name is
        # refused, not the blob looked up.
        self.assertRegistryError(self.instance.get("/v2/Hello/blobs/sha256:" + "0" * 64), 400,
                                 "NAME_INVALID", "Hello")
        self.assertRegistryError(self.instance.get("/v2/hello/manifests/sha256:zz"), 400, "DIGEST_INVALID")
        # Traversal never reaches a file: nginx normalises the path, and what
        # is left is no endpoint (or no valid digest).
        r = self.instance.get("/v2/hello/blobs/sha256:..%2F..%2Fetc%2Fpasswd")
        self.assertIn(r.status, (400, 404))
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertNotIn(b"root:", r.body)

    def test_unknown_digests(self):
        missing = "sha256:" + "0" * 64
        self.assertRegistryError(self.instance.get("/v2/hello/blobs/" + missing), 404, "BLOB_UNKNOWN")
        self.assertRegistryError(self.instance.get("/v2/hello/manifests/" + missing), 404, "MANIFEST_UNKNOWN")
        head = self.instance.head("/v2/hello/blobs/" + missing)
        self.assertEqual(head.status, 404)
        # A well-formed digest of another algorithm names nothing here; it
        # is not an invalid one.
        sha512 = "sha512:" + "a" * 128
        self.assertRegistryError(self.instance.get("/v2/hello/blobs/" + sha512), 404, "BLOB_UNKNOWN")
        self.assertRegistryError(self.instance.get("/v2/hello/manifests/" + sha512), 404,
                                 "MANIFEST_UNKNOWN")
        # A layer is not a manifest, and a manifest is not served as a layer.
        manifest = self.instance.manifest("libgreet")
        layer = manifest.json()["layers"][0]["digest"]
        self.assertRegistryError(self.instance.get("/v2/libgreet/manifests/" + layer), 404, "MANIFEST_UNKNOWN")

    def test_unsupported_methods_and_endpoints(self):
        for method, path in (("POST", "/v2/hello/blobs/uploads/"), ("PUT", "/v2/hello/manifests/latest"),
                             ("DELETE", "/v2/hello/manifests/latest"), ("PATCH", "/v2/hello/blobs/uploads/x"),
                             ("OPTIONS", "/v2/")):
            r = self.instance.request(method, path)
            self.assertRegistryError(r, 405, "UNSUPPORTED", method)
            self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.assertRegistryError(self.instance.get("/v2/_catalog"), 404, "UNSUPPORTED")
        self.assertEqual(self.instance.get("/nothing-here").header("Content-Type"), "application/json")

    def test_large_upload_is_a_json_error(self):
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", self.instance.port, timeout=60)
        conn.request("PUT", "/v2/hello/blobs/uploads/x", body=b"\0" * (2 << 20))
        r = conn.getresponse()
        body = r.read()
        conn.close()
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(body)["errors"][0]["code"], "UNSUPPORTED")
