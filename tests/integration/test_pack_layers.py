"""Layers of real-shaped packages, read by real clients: every file name a
store path can hold, packed by a service in the C locale (as systemd and
`nixery run` start it), pulled by skopeo and unpacked by umoci (Go's
archive/tar and gzip) into the same tree; the blobs read by gzip -d and
pigz -d; and zstd layers for clients that list OCI first (podman runs
them), while Docker-format manifests (what Docker and containerd ask for
first) keep gzip."""

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import PODMAN_RUN, Instance, TestCase, have, podman_argv, run, skopeo_copy, unpack
from test_slow_clients import DaemonsCase

OCI_ONLY = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# What containerd (and so Docker, nerdctl, Kubernetes on containerd) sends.
CONTAINERD_ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, "
                     "application/vnd.docker.distribution.manifest.list.v2+json, "
                     "application/vnd.oci.image.manifest.v1+json, "
                     "application/vnd.oci.image.index.v1+json, */*")
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def describe_tree(root):
    """Relative path (bytes) -> (type, mode, size, link target, content)."""
    root = os.fsencode(str(root))
    out = {}

    def walk(rel):
        path = os.path.join(root, rel) if rel else root
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", oct(st.st_mode & 0o7777))
            for name in sorted(os.listdir(path)):
                walk(os.path.join(rel, name) if rel else name)
        else:
            with open(path, "rb") as f:
                out[rel] = ("file", oct(st.st_mode & 0o7777), st.st_size, f.read())
    walk(b"")
    return out


def blob_path(instance, digest):
    return next(p for p in instance.storage.rglob(digest[7:]) if p.is_file())


@unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
class OddNamesTest(TestCase):
    def test_every_name_survives_a_pull_in_the_c_locale(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-names-"))
        self.addCleanup(shutil.rmtree, work, True)
        with Instance(LANG="C", LC_ALL="C", LC_CTYPE=None, LANGUAGE=None) as inst:
            manifest = inst.manifest("oddnames")
            self.assertEqual(manifest.status, 200, manifest)
            skopeo_copy(inst, "oddnames", "latest", work / "layout", "odd")
            rootfs = unpack(work / "layout", "odd", work / "bundle")

            store = next(Path("/nix/store").glob("*-oddnames-1.0"))
            want = describe_tree(store)
            got = describe_tree(rootfs / "nix/store" / store.name)
            self.assertGreater(len(want), 40)
            self.assertEqual(sorted(got), sorted(want))
            self.assertEqual(got, want)
            names = rootfs / "nix/store" / store.name / "share/names"
            self.assertEqual(os.stat(os.fsencode(str(names)) + "/hard-caf\xe9".encode("latin-1")).st_ino,
                             os.stat(names / "ünïcødé-名前.txt").st_ino)

            # Every layer is one gzip stream that gzip and pigz read.
            for layer in manifest.json()["layers"]:
                blob = blob_path(inst, layer["digest"])
                run(["gzip", "-t", str(blob)])
                if have("pigz"):
                    run(["pigz", "-t", str(blob)])


@unittest.skipUnless(have("skopeo"), "skopeo is needed")
class ZstdTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instance = Instance(NIXERY_LAYER_COMPRESSION="zstd").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.instance.__exit__(None, None, None)

    def config(self, manifest):
        return json.loads(self.instance.get("/v2/app-a/blobs/" + manifest["config"]["digest"]).body)

    def test_oci_gets_zstd_docker_gets_gzip_of_the_same_tars(self):
        oci = self.instance.manifest("app-a", accept=OCI_ONLY)
        self.assertEqual(oci.status, 200, oci)
        oci = oci.json()
        docker = self.instance.manifest("app-a", accept=CONTAINERD_ACCEPT).json()
        self.assertEqual(docker["mediaType"], DOCKER_MANIFEST)
        self.assertEqual({l["mediaType"] for l in oci["layers"]}, {ZSTD_LAYER})
        self.assertEqual({l["mediaType"] for l in docker["layers"]},
                         {"application/vnd.docker.image.rootfs.diff.tar.gzip"})
        # One config: the tars are the same, only their compression differs.
        self.assertEqual(oci["config"]["digest"], docker["config"]["digest"])
        diff_ids = self.config(oci)["rootfs"]["diff_ids"]
        for z, g, diff_id in zip(oci["layers"], docker["layers"], diff_ids):
            zblob = self.instance.get("/v2/app-a/blobs/" + z["digest"]).body
            gblob = self.instance.get("/v2/app-a/blobs/" + g["digest"]).body
            self.assertEqual(zblob[:4], b"\x28\xb5\x2f\xfd")
            tar = subprocess.run(["zstd", "-dc"], input=zblob, stdout=subprocess.PIPE, check=True).stdout
            self.assertEqual(tar, gzip.decompress(gblob))
            self.assertEqual("sha256:" + hashlib.sha256(tar).hexdigest(), diff_id)
        # Each compression is packed once and recorded under its own key.
        packed = self.instance.packed_layers()
        self.assertEqual(len(packed), len(set(packed)))
        with self.instance.db() as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM layers").fetchone()[0], len(packed))

    def test_turning_zstd_on_packs_only_the_zstd_forms(self):
        # Layers packed as gzip before stay; the zstd forms are packed, in
        # one walk each, and nothing else is.
        with Instance() as before:
            docker = before.manifest("app-a", accept=CONTAINERD_ACCEPT).json()
            gzip_layers = [l["digest"] for l in docker["layers"]]
            self.assertEqual(sorted(before.packed_layers()), sorted(gzip_layers))
            packed_before = len(before.log_records())
            before.stop()
            before.env["NIXERY_LAYER_COMPRESSION"] = "zstd"
            before.start()
            oci = before.manifest("app-a", accept=OCI_ONLY).json()
            again = before.manifest("app-a", accept=CONTAINERD_ACCEPT).json()
            self.assertEqual([l["digest"] for l in again["layers"]], gzip_layers)
            packed = [r for r in before.log_records()[packed_before:] if r.get("msg") == "layer packed"]
            self.assertEqual({r["compression"] for r in packed}, {"zstd"}, packed)
            self.assertEqual(sorted(r["digest"] for r in packed),
                             sorted(l["digest"] for l in oci["layers"]))

    @unittest.skipUnless(have("podman") and have("runc"), "podman and runc are needed")
    def test_podman_pulls_and_runs_zstd(self):
        storage = Path(tempfile.mkdtemp(prefix="nixery-podman-zstd-"))
        self.addCleanup(shutil.rmtree, storage, True)
        podman = podman_argv(storage)
        image = "127.0.0.1:%d/shell/hello" % self.instance.port
        run(podman + ["pull", "--tls-verify=false", image])
        out = run(podman + PODMAN_RUN + [image, "hello"]).stdout.decode()
        self.assertEqual(out, "Hello, world!\n")
        # podman lists OCI first: it got, and unpacked, zstd layers.
        inspect = json.loads(run(podman + ["image", "inspect", image]).stdout)
        self.assertEqual(inspect[0]["ManifestType"], OCI_ONLY)

    def test_skopeo_copies_zstd(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-zstd-"))
        self.addCleanup(shutil.rmtree, work, True)
        skopeo_copy(self.instance, "app-b", "latest", work / "layout", "z")
        index = json.loads((work / "layout/index.json").read_text())
        manifest = json.loads((work / "layout/blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
        self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {ZSTD_LAYER})
        for layer in manifest["layers"]:
            run(["zstd", "-t", str(work / "layout/blobs/sha256" / layer["digest"][7:])])


class DockerZstdTest(DaemonsCase):
    def test_docker_pulls_gzip_from_a_zstd_registry_on_every_pull(self):
        # Docker 20.10 (Debian 12's, which reads no zstd) lists its six
        # manifest types in an order that changes from pull to pull, OCI
        # before the Docker manifest on most pulls; each pull must still
        # get the Docker manifest and its gzip layers.
        with Instance(NIXERY_LAYER_COMPRESSION="zstd") as inst:
            image = "127.0.0.1:%d/shell/hello" % inst.port
            body = inst.manifest("shell/hello", accept=CONTAINERD_ACCEPT).body
            docker_manifest = image + "@sha256:" + hashlib.sha256(body).hexdigest()
            for _ in range(4):
                self.docker("pull", image)
                got = self.docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", image)
                self.assertEqual(got.stdout.decode().strip(), docker_manifest)
                self.docker("rmi", image)
            self.docker("pull", image)
            out = self.docker("run", "--rm", "--network=none", image, "hello")
            self.assertEqual(out.stdout.decode(), "Hello, world!\n")
            self.docker("rmi", image)


class DockerHardLinkTest(DaemonsCase):
    def test_both_twins_stay_executable_under_docker(self):
        # Docker (and containerd) chmod a hard link's inode to the mode in
        # its tar header: a link entry written 0444 made both programs
        # unrunnable.
        with Instance() as inst:
            image = "127.0.0.1:%d/twins" % inst.port
            self.docker("pull", image)
            for twin in ("twin-a", "twin-b"):
                out = self.docker("run", "--rm", "--network=none", image, twin)
                self.assertEqual(out.stdout.decode(), "twin /bin/%s\n" % twin)
            self.docker("rmi", image)
