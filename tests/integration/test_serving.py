"""What nginx answers without the worker pool, through real nginx and the
real pool: blobs by digest sent straight from storage once the pool has
checked them, manifests from nginx's cache for as long as the pool allows
(NIXERY_TAG_CACHE_SECONDS for tags), with the same headers, types, ranges
and errors as when the pool answers; and the errors nginx makes itself
(bad request lines, unknown methods, sizes, an unreachable pool), which
are registry JSON too, never nginx's HTML."""

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, make_package_set
from test_sources import git

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/octet-stream"
# What skopeo and podman send: several Accept lines, an OCI type first.
SKOPEO_ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, "application/vnd.oci.image.index.v1+json"]
WINDOW = 8  # NIXERY_TAG_CACHE_SECONDS
SERVED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest",
                  "Docker-Distribution-API-Version")


def pool_requests(instance, path, method=None):
    """How many requests for `path` the worker pool has answered (its log);
    a hand-over to @manifest_build (an image to build) and the wait there
    are one answer."""
    return sum(1 for r in instance.log_records()
               if r.get("msg") == "request" and r.get("path") == path
               and "handed_to" not in r
               and (method is None or r.get("method") == method))


def wait_for_pool_log(instance, path, count):
    """The pool logs a request after answering it: wait for the line."""
    deadline = time.time() + 5
    while pool_requests(instance, path) < count and time.time() < deadline:
        time.sleep(0.05)
    return pool_requests(instance, path)


def read_answer(connection):
    """Reads an HTTP answer until the server closes: (status, headers, body)."""
    out = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def raw_request(port, data, timeout=10):
    """Sends bytes as they are and returns the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_answer(s)


def request_with_accepts(instance, path, accepts, method="GET"):
    """A request with one Accept line per value, as Go clients send them."""
    lines = "".join("Accept: %s\r\n" % a for a in accepts)
    data = ("%s %s HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n"
            % (method, path, lines)).encode()
    return raw_request(instance.port, data)


class DirectServingTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instance = Instance(NIXERY_SOURCE_TTL=WINDOW, NIXERY_TAG_CACHE_SECONDS=WINDOW).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.instance.__exit__(None, None, None)

    def assertSameAnswer(self, first, second):
        for name in SERVED_HEADERS:
            self.assertEqual(first.header(name), second.header(name), name)
        self.assertEqual(first.body, second.body)
        # The same answer, to another request: with that request's id (in
        # nginx's access log), not the id of the one nginx kept or linked.
        for answer in (first, second):
            self.assertRegex(answer.header("X-Request-Id") or "", "^[0-9a-f]{32}$")
        self.assertNotEqual(first.header("X-Request-Id"), second.header("X-Request-Id"))
        rid = second.header("X-Request-Id")
        log = self.instance.state / "nginx-access.log"
        deadline = time.time() + 5
        while (" " + rid + "\n") not in log.read_text() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn(" " + rid + "\n", log.read_text())

    def test_blobs_come_from_nginx_after_the_pool_checked_them(self):
        inst = self.instance
        manifest = inst.manifest("app-b").json()
        blobs = [(manifest["config"]["digest"], DOCKER_CONFIG)] + \
                [(layer["digest"], LAYER) for layer in manifest["layers"]]
        for digest, media_type in blobs:
            path = "/v2/app-b/blobs/" + digest
            first = inst.get(path)
            self.assertEqual(wait_for_pool_log(inst, path, 1), 1, "the pool checks a blob first")
            self.assertEqual(first.status, 200, first)
            self.assertEqual(first.header("Content-Type"), media_type)
            self.assertEqual(first.header("Docker-Content-Digest"), digest)
            self.assertEqual(first.header("Docker-Distribution-API-Version"), "registry/2.0")
            self.assertEqual("sha256:" + hashlib.sha256(first.body).hexdigest(), digest)
            self.assertEqual(int(first.header("Content-Length")), len(first.body))

            # From now on nginx sends it alone, with the same answer.
            again = inst.get(path)
            self.assertSameAnswer(first, again)
            head = inst.head(path)
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            for name in SERVED_HEADERS:
                self.assertEqual(head.header(name), first.header(name), name)
            ranged = inst.get(path, {"Range": "bytes=1-4"})
            self.assertEqual(ranged.status, 206)
            self.assertEqual(ranged.body, first.body[1:5])
            self.assertEqual(ranged.header("Content-Range"), "bytes 1-4/%d" % len(first.body))
            self.assertEqual(ranged.header("Docker-Content-Digest"), digest)
            # The same blob under another (well-formed) name: still nginx's.
            other = inst.get("/v2/some/other-name/blobs/" + digest)
            self.assertSameAnswer(first, other)
            self.assertEqual(pool_requests(inst, path), 1, "nginx asked the pool again")

    def test_what_nginx_never_sends_by_itself(self):
        inst = self.instance
        r = inst.manifest("app-c")
        manifest = r.json()
        layer = manifest["layers"][0]["digest"]
        inst.get("/v2/app-c/blobs/" + layer)  # nginx may send it from now on
        manifest_digest = r.header("Docker-Content-Digest")
        unknown = "sha256:" + "0" * 64
        self.assertRegistryError(inst.get("/v2/app-c/blobs/" + unknown), 404, "BLOB_UNKNOWN", unknown)
        head = inst.head("/v2/app-c/blobs/" + unknown)
        self.assertEqual((head.status, head.header("Content-Type")), (404, "application/json"))
        self.assertRegistryError(inst.get("/v2/app-c/manifests/" + unknown), 404, "MANIFEST_UNKNOWN")
        for bad in ("sha256:" + "0" * 63, "sha256:" + "A" * 64, "sha256:" + layer[7:] + "0",
                    layer.upper().replace("SHA256", "sha256")):
            self.assertRegistryError(inst.get("/v2/app-c/blobs/" + bad), 400, "DIGEST_INVALID")
        # A manifest is not a blob, a layer not a manifest, however often asked.
        for _ in range(2):
            self.assertRegistryError(inst.get("/v2/app-c/blobs/" + manifest_digest), 404, "BLOB_UNKNOWN")
            self.assertRegistryError(inst.get("/v2/app-c/manifests/" + layer), 404, "MANIFEST_UNKNOWN")
        # A malformed name is the pool's to refuse, even for a blob nginx has.
        for name in ("App-C", "a..b", "a_-b", "-a", "a" * 256):
            r = inst.get("/v2/%s/blobs/%s" % (name, layer))
            self.assertIn(r.status, (400, 404), r)
            self.assertNotEqual(r.status, 200)
            self.assertEqual(r.header("Content-Type"), "application/json")
        # Storage is reachable by a well-formed digest only.
        for path in ("/_storage/layers/" + layer[7:], "/_storage/", "/_storage/layers/",
                     "/v2/app-c/blobs/sha256:../../../layers/" + layer[7:],
                     "/v2/app-c/blobs/sha256:%2e%2e/%2e%2e/blobs/" + layer[7:] + ".layer",
                     "/v2/app-c/blobs/", "/v2/app-c/blobs/sha256:", "/served/blobs/"):
            r = inst.get(path)
            self.assertNotEqual(r.status, 200, path)
            self.assertEqual(r.header("Content-Type"), "application/json", path)

    def assertUnknownOnceDeleted(self, path, digest, code):
        """What `nixery gc` leaves when it deletes a blob or manifest (its
        links too, in this instance; another instance sharing the storage
        keeps its own): nginx may still send the file it holds open
        (open_file_cache) until it looks the link up again, a second later:
        the digest's bytes all the same, and unknown within two seconds."""
        inst = self.instance
        self.assertEqual(inst.get(path).status, 200)
        self.assertEqual(inst.get(path).status, 200)
        (inst.storage / "layers" / digest[7:]).unlink()
        deadline = time.time() + 2.5
        while True:
            r = inst.get(path)
            if r.status != 200 or time.time() > deadline:
                break
            self.assertEqual("sha256:" + hashlib.sha256(r.body).hexdigest(), digest)
            time.sleep(0.1)
        self.assertRegistryError(r, 404, code)

    def test_a_gc_deleted_blob_is_unknown_again(self):
        digest = self.instance.manifest("app-a/hardlinks").json()["layers"][-1]["digest"]
        self.assertUnknownOnceDeleted("/v2/app-a/hardlinks/blobs/" + digest, digest, "BLOB_UNKNOWN")

    def test_manifests_come_from_nginx_cache_within_the_window(self):
        inst = self.instance
        (inst.package_set / "stamp.nix").write_text('"one"\n')
        path = "/v2/stamp/manifests/latest"
        built = inst.get(path)
        self.assertEqual(built.status, 200, built)
        # The answer that waited for the build is not cached (see
        # @manifest_build in nginx/locations.conf.in); the next one is.
        first = inst.get(path)
        self.assertSameAnswer(built, first)
        self.assertEqual(first.header("Vary"), "Accept")
        digest = first.header("Docker-Content-Digest")
        # Each set of Accept headers is its own answer, from the pool first.
        oci = inst.manifest("stamp", accept=OCI_MANIFEST)
        self.assertEqual(oci.header("Content-Type"), OCI_MANIFEST)
        self.assertEqual(oci.header("Vary"), "Accept")
        status, headers, body = request_with_accepts(inst, path, SKOPEO_ACCEPT)
        self.assertEqual((status, headers["content-type"]), (200, DOCKER_MANIFEST))
        self.assertEqual(body, first.body)
        self.assertEqual(wait_for_pool_log(inst, path, 4), 4)

        # Within NIXERY_TAG_CACHE_SECONDS the pool is not asked, for GET or
        # HEAD, and a change of the package set is not seen yet.
        (inst.package_set / "stamp.nix").write_text('"two"\n')
        again = inst.get(path)
        self.assertSameAnswer(first, again)
        self.assertEqual(again.header("Vary"), "Accept")
        head = inst.head(path)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("Docker-Content-Digest"), digest)
        self.assertEqual(head.body, b"")
        self.assertEqual(inst.manifest("stamp", accept=OCI_MANIFEST).body, oci.body)
        status, headers, body = request_with_accepts(inst, path, SKOPEO_ACCEPT)
        self.assertEqual((status, headers["content-type"], body), (200, DOCKER_MANIFEST, first.body))
        status, headers, _ = request_with_accepts(inst, path, SKOPEO_ACCEPT, "HEAD")
        self.assertEqual((status, headers["docker-content-digest"]), (200, digest))
        # HEAD by tag, then GET by digest: the same manifest.
        by_digest = inst.get("/v2/stamp/manifests/" + digest)
        self.assertEqual(by_digest.body, first.body)
        self.assertEqual(by_digest.header("Content-Type"), DOCKER_MANIFEST)
        self.assertEqual(pool_requests(inst, path), 4, "the pool answered a cached manifest")

        # After the window the pool answers again: the change is seen, and
        # the pool records the use.
        time.sleep(WINDOW + 0.5)
        moved = inst.get(path)
        self.assertNotEqual(moved.header("Docker-Content-Digest"), digest)
        self.assertEqual(wait_for_pool_log(inst, path, 5), 5)

    def test_a_head_by_tag_from_the_pool_fills_the_cache_for_the_get(self):
        # The pool sends the body for a HEAD too (nginx drops it): the entry
        # nginx keeps then serves the GET that follows, whole.
        inst = self.instance
        path = "/v2/libgreet/manifests/latest"  # asked for by no other test here
        self.assertEqual(inst.get(path).status, 200)  # built in @manifest_build: not cached
        head = inst.head(path)
        self.assertEqual((head.status, head.body), (200, b""))
        self.assertEqual(wait_for_pool_log(inst, path, 2), 2)
        get = inst.get(path)
        self.assertEqual(get.status, 200)
        self.assertEqual(len(get.body), int(get.header("Content-Length")))
        self.assertEqual("sha256:" + hashlib.sha256(get.body).hexdigest(),
                         get.header("Docker-Content-Digest"))
        self.assertEqual(get.header("Docker-Content-Digest"), head.header("Docker-Content-Digest"))
        self.assertEqual(pool_requests(inst, path, "HEAD"), 1)
        self.assertEqual(pool_requests(inst, path, "GET"), 1, "the GET after the HEAD reached the pool")

    def test_a_manifest_by_tag_from_the_cache_answers_a_range(self):
        inst = self.instance
        path = "/v2/twins/manifests/latest"  # asked for by no other test here
        self.assertEqual(inst.get(path).status, 200)  # built in @manifest_build: not cached
        whole = inst.get(path)
        self.assertEqual(wait_for_pool_log(inst, path, 2), 2)
        ranged = inst.get(path, {"Range": "bytes=0-9"})
        self.assertEqual((ranged.status, ranged.body), (206, whole.body[:10]))
        self.assertEqual(ranged.header("Content-Range"), "bytes 0-9/%d" % len(whole.body))
        self.assertEqual(pool_requests(inst, path), 2, "the pool answered a cached manifest")

    def test_manifest_by_digest_from_a_link_renewed_each_minute(self):
        inst = self.instance
        r = inst.manifest("app-a/app-b")
        digest = r.header("Docker-Content-Digest")
        oci = inst.manifest("app-a/app-b", accept=OCI_MANIFEST)
        oci_digest = oci.header("Docker-Content-Digest")
        links = inst.state / "served" / "manifests"
        # The pool links a manifest for the minute of nginx's clock it saw;
        # start well inside a minute so the test does not cross one.
        if time.localtime().tm_sec > 45:
            time.sleep(61 - time.localtime().tm_sec)
        for manifest, media_type, d in ((r, DOCKER_MANIFEST, digest), (oci, OCI_MANIFEST, oci_digest)):
            path = "/v2/app-a/app-b/manifests/" + d
            first = inst.get(path)
            self.assertEqual(wait_for_pool_log(inst, path, 1), 1, "the pool records the pull by digest")
            self.assertEqual(first.body, manifest.body)
            self.assertEqual(first.header("Content-Type"), media_type)
            self.assertIsNone(first.header("X-Accel-Expires"))
            (link,) = list((links / d[7:]).iterdir())
            self.assertRegex(link.name, r"^\d{4}-\d\d-\d\dT\d\d:\d\d\.(docker|oci)-manifest$")
            # nginx sends it alone now, with the pool's headers, HEAD and Range.
            again = inst.get(path)
            self.assertSameAnswer(first, again)
            head = inst.head(path)
            self.assertEqual((head.status, head.body), (200, b""))
            for response in (head, inst.get(path, {"Range": "bytes=0-9"})):
                for name in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-API-Version"):
                    self.assertEqual(response.header(name), first.header(name), name)
            ranged = inst.get(path, {"Range": "bytes=0-9"})
            self.assertEqual((ranged.status, ranged.body), (206, manifest.body[:10]))
            self.assertEqual(pool_requests(inst, path), 1, "nginx asked the pool within the minute")
            # In another minute nginx looks for another link: the pool is
            # asked again (and records the use), and links that minute.
            link.rename(link.with_name("2000-01-01T00:00" + link.suffix))
            time.sleep(1.1)  # nginx looks a link up again after a second
            self.assertSameAnswer(first, inst.get(path))
            self.assertEqual(wait_for_pool_log(inst, path, 2), 2)
            self.assertEqual([l.name for l in (links / d[7:]).iterdir()], [link.name])
            self.assertEqual(inst.get(path).status, 200)
            self.assertEqual(pool_requests(inst, path), 2)

    def test_a_gc_deleted_manifest_is_unknown_again(self):
        digest = self.instance.manifest("app-b/hardlinks").header("Docker-Content-Digest")
        self.assertUnknownOnceDeleted("/v2/app-b/hardlinks/manifests/" + digest, digest,
                                      "MANIFEST_UNKNOWN")


class NginxErrorsTest(TestCase):
    """Every error nginx makes itself is registry JSON with a message."""

    @classmethod
    def setUpClass(cls):
        cls.instance = Instance().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.instance.__exit__(None, None, None)

    def assertJsonError(self, answer, status, code=None):
        got_status, headers, body = answer
        self.assertEqual(got_status, status, body[:300])
        self.assertEqual(headers.get("content-type"), "application/json", body[:300])
        self.assertNotIn(b"<html", body)
        error = json.loads(body)["errors"][0]
        self.assertTrue(error["message"])
        self.assertRegex(headers.get("x-request-id", ""), "^[0-9a-f]{32}$")
        if code:
            self.assertEqual(error["code"], code)

    def raw(self, data):
        return raw_request(self.instance.port, data)

    def test_malformed_requests(self):
        for line in (b"GET /v2/../../etc/passwd HTTP/1.1", b"GET /v2/a%00b/manifests/latest HTTP/1.1",
                     b"GET /v2/..%2f..%2fetc HTTP/1.1", b"get /v2/ HTTP/1.1", b"\x16\x03\x01\x02 hello"):
            self.assertJsonError(self.raw(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n"), 400)
        self.assertJsonError(self.raw(b"GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n"), 400)
        self.assertJsonError(self.raw(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n"
                                      b"Connection: close\r\n\r\n"), 501, "UNSUPPORTED")

    def test_methods(self):
        self.assertJsonError(self.raw(b"TRACE /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                             405, "UNSUPPORTED")
        self.assertJsonError(self.raw(b"FOO /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                             405, "UNSUPPORTED")
        # A blob nginx sends by itself refuses other methods as the pool would.
        manifest = self.instance.manifest("app-a").json()
        path = "/v2/app-a/blobs/" + manifest["layers"][0]["digest"]
        self.assertEqual(self.instance.get(path).status, 200)
        for method in (b"POST", b"PUT", b"DELETE", b"PATCH", b"FOO"):
            answer = self.raw(method + b" " + path.encode() +
                              b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.assertJsonError(answer, 405, "UNSUPPORTED")

    def test_sizes(self):
        long_uri = b"/v2/" + b"a" * 20000 + b"/manifests/latest"
        self.assertJsonError(self.raw(b"GET " + long_uri + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                             414)
        big_header = b"X-Big: " + b"a" * 20000 + b"\r\n"
        self.assertJsonError(self.raw(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + big_header +
                                      b"Connection: close\r\n\r\n"), 431)
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(40))
        self.assertJsonError(self.raw(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + many +
                                      b"Connection: close\r\n\r\n"), 431)
        self.assertJsonError(self.raw(b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 5000000\r\nConnection: close\r\n\r\n"), 413)

    def test_pool_unreachable(self):
        # In place of the pool, a socket that hangs up at once: nginx's
        # 502, a registry 503 for the client.
        sock = self.instance.state / "fcgi.sock"
        moved = self.instance.state / "fcgi.sock.away"
        os.rename(sock, moved)
        try:
            with socket.socket(socket.AF_UNIX) as impostor:
                impostor.bind(str(sock))
                impostor.listen(1)
                impostor.settimeout(10)
                with socket.create_connection(("127.0.0.1", self.instance.port), timeout=10) as client:
                    client.sendall(b"GET /v2/x/manifests/latest HTTP/1.1\r\nHost: x\r\n"
                                   b"Connection: close\r\n\r\n")
                    impostor.accept()[0].close()
                    answer = read_answer(client)
            sock.unlink()
        finally:
            os.rename(moved, sock)
        self.assertJsonError(answer, 503, "UNAVAILABLE")
        self.assertEqual(answer[1].get("retry-after"), "5")
        self.assertEqual(self.instance.get("/v2/").status, 200)


@unittest.skipUnless(have("git"), "git is needed")
class GitTagWindowTest(TestCase):
    """A git branch that moves is seen once NIXERY_TAG_CACHE_SECONDS have
    passed; a commit names the same image for good and stays cached."""

    def repository(self):
        """A package set in git, two commits, and a branch `moving` at the
        first: (the repository, the commits)."""
        work = Path(tempfile.mkdtemp(prefix="nixery-git-"))
        self.addCleanup(shutil.rmtree, work, True)
        repo = make_package_set(work)
        git(repo, "init", "-q")
        commits = []
        for stamp in ("one", "two"):
            (repo / "stamp.nix").write_text('"%s"\n' % stamp)
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", stamp)
            commits.append(git(repo, "rev-parse", "HEAD"))
        git(repo, "branch", "moving", commits[0])
        return repo, commits

    def test_a_branch_is_cached_ten_seconds_by_default(self):
        # Not the channel's and path's default (NIXERY_SOURCE_TTL, at most
        # a minute): a push shows within seconds.
        repo, commits = self.repository()
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(repo), NIXERY_GIT_REFS_TTL=0) as inst:
            branch = "/v2/stamp/manifests/moving"
            before = inst.get(branch).header("Docker-Content-Digest")  # built: not cached
            self.assertEqual(inst.get(branch).header("Docker-Content-Digest"), before)
            cached_at = time.monotonic()
            git(repo, "branch", "-f", "moving", commits[1])
            time.sleep(7)
            self.assertEqual(inst.get(branch).header("Docker-Content-Digest"), before,
                             "the branch left nginx's cache within 7 s")
            time.sleep(max(0, cached_at + 10.5 - time.monotonic()))
            self.assertNotEqual(inst.get(branch).header("Docker-Content-Digest"), before)

    def test_branches_move_commits_stay(self):
        repo, commits = self.repository()
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(repo), NIXERY_TAG_CACHE_SECONDS=4,
                      NIXERY_GIT_REFS_TTL=0) as inst:
            branch = "/v2/stamp/manifests/moving"
            commit = "/v2/stamp/manifests/" + commits[0]
            before = inst.get(branch).header("Docker-Content-Digest")
            # The answer that waited for the build is not cached (see
            # @manifest_build in nginx/locations.conf.in); the next is.
            self.assertEqual(inst.get(branch).header("Docker-Content-Digest"), before)
            self.assertEqual(inst.get(commit).header("Docker-Content-Digest"), before)
            git(repo, "branch", "-f", "moving", commits[1])
            self.assertEqual(inst.get(branch).header("Docker-Content-Digest"), before)
            time.sleep(4)
            self.assertNotEqual(inst.get(branch).header("Docker-Content-Digest"), before)
            self.assertEqual(wait_for_pool_log(inst, branch, 3), 3)
            self.assertEqual(inst.get(commit).header("Docker-Content-Digest"), before)
            self.assertEqual(pool_requests(inst, commit), 1, "a commit's manifest left nginx's cache")
