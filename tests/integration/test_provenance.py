"""Provenance (issue 14, section 2): the image says which package set it came
from (a path, a git repository, a channel), which packages it holds and which
store paths each layer holds, in the config's Labels and the OCI manifest's
annotations, read here with skopeo, never with a URL's credentials;
two instances building from the same source serve byte-identical manifests;
the start page shows the current revision."""

import base64
import functools
import http.server
import json
import shutil
import tarfile
import tempfile
import threading
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, make_package_set, run

GIT = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test", "-c", "init.defaultBranch=main"]
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE = "app-a/app-b"


def git(repo, *args):
    return run(GIT + ["-C", str(repo)] + list(args)).stdout.decode().strip()


def skopeo_inspect(instance, name, tag, *flags):
    return json.loads(run(["skopeo", "inspect", "--tls-verify=false"] + list(flags) +
                          ["docker://127.0.0.1:%d/%s:%s" % (instance.port, name, tag)]).stdout)


def sri(path):
    """The NAR hash of `path` as Nix computes it, in SRI form."""
    hex_hash = run(["nix-hash", "--type", "sha256", str(path)]).stdout.decode().strip()
    return "sha256-" + base64.b64encode(bytes.fromhex(hex_hash)).decode()


def closure(paths):
    out = run(["nix-store", "--query", "--requisites"] + list(paths)).stdout.decode().split()
    return {p.rsplit("/", 1)[1] for p in out}


class ProvenanceCase(TestCase):
    def labels(self, instance, name=IMAGE, tag="latest", title=None):
        """The config's Labels, as skopeo reads them, checked against the
        image's layers; and the OCI manifest's annotations."""
        config = skopeo_inspect(instance, name, tag, "--config")
        labels = config["config"]["Labels"]
        self.assertEqual(labels["org.opencontainers.image.title"], title or name)
        self.assertEqual(labels["org.opencontainers.image.created"], config["created"])

        # Packages and layers from the labels alone: each requested package
        # with its output, and every store path of its closure in exactly one
        # layer, in the order of rootfs.diff_ids (the top layer holds only
        # symlinks to the packages).
        packages = json.loads(labels["org.nixos.nixery.packages"])
        for p in name.split("/"):
            self.assertIn(p, packages)
            self.assertTrue(Path(packages[p]).exists(), packages[p])
        layers = json.loads(labels["org.nixos.nixery.layers"])
        self.assertEqual(len(layers), len(config["rootfs"]["diff_ids"]))
        self.assertEqual(layers[-1], [])
        listed = [p for layer in layers for p in layer]
        self.assertEqual(len(listed), len(set(listed)))
        self.assertEqual(set(listed), closure(packages.values()))

        # The OCI manifest carries the same provenance (not the layer list);
        # the Docker format has no annotations.
        oci = instance.manifest(name, tag, accept=OCI)
        self.assertEqual(oci.status, 200, oci)
        annotations = oci.json()["annotations"]
        self.assertEqual(annotations, {k: v for k, v in labels.items() if k != "org.nixos.nixery.layers"})
        raw = skopeo_inspect(instance, name, tag, "--raw")
        self.assertEqual(raw["mediaType"], DOCKER)
        self.assertNotIn("annotations", raw)
        return labels, oci


@unittest.skipUnless(have("skopeo"), "skopeo is needed")
class PathSourceTest(ProvenanceCase):
    def test_path_labels_and_two_instances(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-prov-"))
        self.addCleanup(shutil.rmtree, work, True)
        pkgs = make_package_set(work)
        digests = []
        for i in range(2):
            # Each its own state directory and storage, one package set.
            with Instance(package_set=pkgs) as inst:
                labels, oci = self.labels(inst)
                self.assertEqual(labels["org.nixos.nixery.source.type"], "path")
                # No server path: every puller sees the labels.
                self.assertNotIn("org.nixos.nixery.source.location", labels)
                self.assertNotIn(str(pkgs).encode(), oci.body)
                self.assertEqual(labels["org.nixos.nixery.source.hash"], sri(pkgs))
                self.assertNotIn("org.opencontainers.image.source", labels)
                docker = inst.manifest(IMAGE, accept=DOCKER)
                digests.append((docker.header("Docker-Content-Digest"), oci.header("Docker-Content-Digest"),
                                docker.body, oci.body))
                page = inst.get("/").body.decode()
                self.assertIn("content hash <code>%s</code>" % sri(pkgs), page)

                # "a/b" and "b/a" are one image, titled in its canonical spelling.
                swapped, swapped_oci = self.labels(inst, "app-b/app-a", title=IMAGE)
                self.assertEqual(swapped, labels)
                self.assertEqual(swapped_oci.body, oci.body)

                if i == 0:
                    # The package set changes: the next evaluation says so.
                    (pkgs / "stamp.nix").write_text('"changed"\n')
                    changed, _ = self.labels(inst, "stamp")
                    self.assertEqual(changed["org.nixos.nixery.source.hash"], sri(pkgs))
                    self.assertNotEqual(changed["org.nixos.nixery.source.hash"],
                                        labels["org.nixos.nixery.source.hash"])
                    (pkgs / "stamp.nix").unlink()
        self.assertEqual(digests[0], digests[1], "two instances, one source: the same manifests")


@unittest.skipUnless(have("git") and have("skopeo"), "git and skopeo are needed")
class GitSourceTest(ProvenanceCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-prov-git-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        work = make_package_set(self.dir)
        git(work, "init", "-q")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "one")
        self.one = git(work, "rev-parse", "HEAD")
        git(work, "tag", "v1")
        (work / "stamp.nix").write_text('"two"\n')
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "two")
        self.two = git(work, "rev-parse", "HEAD")
        # Served over git's dumb HTTP protocol, with credentials in the URL
        # that must never reach an image.
        run(GIT + ["clone", "-q", "--bare", str(work), str(self.dir / "pkgs.git")])
        git(self.dir / "pkgs.git", "update-server-info")
        handler = functools.partial(QuietHandler, directory=str(self.dir))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/pkgs.git" % port
        self.secret_url = "http://nixery:s3cret-token@127.0.0.1:%d/pkgs.git" % port

    def test_git_labels(self):
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=self.secret_url) as inst:
            for tag, commit in (("latest", self.two), ("v1", self.one)):
                labels, oci = self.labels(inst, tag=tag)
                self.assertEqual(labels["org.opencontainers.image.source"], self.url)
                self.assertEqual(labels["org.opencontainers.image.revision"], commit)
                self.assertEqual(labels["org.nixos.nixery.source.type"], "git")
                self.assertEqual(labels["org.nixos.nixery.source.revision"], commit)
                config = run(["skopeo", "inspect", "--tls-verify=false", "--raw", "--config",
                              "docker://127.0.0.1:%d/%s:%s" % (inst.port, IMAGE, tag)]).stdout
                self.assertNotIn(b"s3cret", config)
                self.assertNotIn(b"s3cret", oci.body)
            # Same outputs, other commit: other labels, so another manifest.
            self.assertNotEqual(inst.manifest(IMAGE, "v1").header("Docker-Content-Digest"),
                                inst.manifest(IMAGE, "latest").header("Docker-Content-Digest"))
            page = inst.get("/").body.decode()
            self.assertIn("Current revision: <code>%s</code>" % self.two, page)
            self.assertNotIn("s3cret", page)


@unittest.skipUnless(have("skopeo"), "skopeo is needed")
class ChannelSourceTest(ProvenanceCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-prov-chan-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pkgs = make_package_set(self.dir)
        self.commit = "0123456789abcdef0123456789abcdef01234567"
        # As channels.nixos.org's tarballs: the nixpkgs commit in .git-revision.
        (self.pkgs / ".git-revision").write_text(self.commit + "\n")
        served = self.dir / "served"
        served.mkdir()
        with tarfile.open(served / "nixos-test.tar.gz", "w:gz") as tar:
            tar.add(str(self.pkgs), arcname="nixexprs")
        handler = functools.partial(QuietHandler, directory=str(served))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.port = self.server.server_address[1]

    def test_channel_labels(self):
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_CHANNEL="nixos-test",
                      NIXERY_CHANNEL_URL="http://mirror:s3cret@127.0.0.1:%d" % self.port) as inst:
            labels, oci = self.labels(inst)
            url = "http://127.0.0.1:%d/nixos-test.tar.gz" % self.port
            self.assertEqual(labels["org.nixos.nixery.source.type"], "channel")
            self.assertEqual(labels["org.nixos.nixery.source.channel"], "nixos-test")
            self.assertEqual(labels["org.opencontainers.image.source"], url)
            self.assertEqual(labels["org.nixos.nixery.source.location"], url)
            self.assertEqual(labels["org.opencontainers.image.revision"], self.commit)
            # The unpacked tarball's NAR hash: the package set's own.
            self.assertEqual(labels["org.nixos.nixery.source.hash"], sri(self.pkgs))
            self.assertNotIn(b"s3cret", oci.body)
            self.assertNotIn("s3cret", json.dumps(labels))
            page = inst.get("/").body.decode()
            self.assertIn("Current revision: <code>%s</code>" % self.commit, page)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    unittest.main()
