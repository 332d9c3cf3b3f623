"""`nixery build NAME[:TAG] --output DIR / --docker-archive FILE`: an image
built without nginx or the pool, written as an OCI image layout and as a
tarball for `docker load`, has the digest the registry serves for the same
name, tag and configuration; umoci unpacks the layout and Docker loads and
runs the archive; run against a running instance's state and storage it
builds ahead for that instance (the next pull builds nothing), also while
the pool builds the same image; mistakes are refused with words and a
non-zero exit status."""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest
from pathlib import Path

from harness import (NIXERY, Instance, TestCase, base_environment, in_rootfs, interrupted, keep_dirs,
                     make_package_set, run, running_with, skopeo_copy, unpack, wait_for)
from test_slow_builds import fresh_salt, in_background
from test_slow_clients import DaemonsCase

OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


class Offline:
    """The environment of an instance that never runs: its own state and
    storage, the given package set and settings, for `nixery build`."""

    def __init__(self, work, package_set, **settings):
        self.dir = Path(tempfile.mkdtemp(prefix="offline-", dir=work))
        self.env = base_environment()
        self.env.update({"STORAGE_PATH": str(self.dir / "storage"),
                         "NIXERY_STATE_DIR": str(self.dir / "state"),
                         "NIXERY_PKGS_PATH": str(package_set)})
        self.env.update({k: str(v) for k, v in settings.items()})


def build(env, *args, check=True):
    return run([str(NIXERY), "build"] + [str(a) for a in args], env=env, check=check)


def layout_entry(layout, tag):
    """The descriptor index.json names `tag` with."""
    index = json.loads((Path(layout) / "index.json").read_text())
    entries = [m for m in index["manifests"]
               if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    assert len(entries) == 1, index
    return entries[0]


def layout_blob(layout, digest):
    return (Path(layout) / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def printed(stdout, kind):
    """The digest `nixery build` printed for an output of `kind`."""
    for line in stdout.decode().splitlines():
        fields = line.split()
        if fields and fields[0] == kind:
            return fields[-1]
    raise AssertionError("no %s line in %r" % (kind, stdout))


def skopeo_digest(inst, name, tag):
    out = run(["skopeo", "inspect", "--tls-verify=false", "docker://127.0.0.1:%d/%s:%s" % (inst.port, name, tag)])
    return json.loads(out.stdout)["Digest"]


class BuildCommandTest(TestCase):
    def setUp(self):
        self.work = Path(tempfile.mkdtemp(prefix="nixery-build-"))

    def tearDown(self):
        if not keep_dirs():
            shutil.rmtree(self.work, ignore_errors=True)

    def test_same_digests_as_the_registry_and_the_layout_runs(self):
        # One package set for the registry and for the offline build; each
        # has its own state and storage.
        with Instance() as inst:
            offline = Offline(self.work, inst.package_set)
            layout = self.work / "layout"
            archive = self.work / "app-a.tar"
            out = build(offline.env, "app-a:v1", "--output", layout, "--docker-archive", archive).stdout

            # The layout holds the OCI manifest, named by the tag...
            entry = layout_entry(layout, "v1")
            self.assertEqual(entry["mediaType"], OCI)
            self.assertEqual(printed(out, "oci-layout"), entry["digest"])
            self.assertEqual(json.loads((layout / "oci-layout").read_text()), {"imageLayoutVersion": "1.0.0"})
            # ...which is what the registry serves an OCI client, byte for byte.
            served = inst.manifest("app-a", "v1", accept=OCI)
            self.assertEqual(served.status, 200, served)
            self.assertEqual(served.header("Docker-Content-Digest"), entry["digest"])
            self.assertEqual(layout_blob(layout, entry["digest"]), served.body)
            # The archive holds the Docker manifest's image, the one skopeo
            # (which accepts Docker manifests) is served with gzip layers.
            docker_digest = printed(out, "docker-archive")
            self.assertEqual(skopeo_digest(inst, "app-a", "v1"), docker_digest)

            # Every blob of the manifest is in the layout, as its digest says.
            manifest = json.loads(served.body)
            for d in [manifest["config"]] + manifest["layers"]:
                self.assertEqual(len(layout_blob(layout, d["digest"])), d["size"])

        # umoci reads the layout; the program runs from its rootfs.
        rootfs = unpack(layout, "v1", self.work / "bundle")
        self.assertEqual(in_rootfs(rootfs, "/bin/app-a"), "app-a uses greetings from libgreet\n")
        # skopeo reads it too, and sees the same digest.
        inspected = json.loads(run(["skopeo", "inspect", "oci:%s:v1" % layout]).stdout)
        self.assertEqual(inspected["Digest"], entry["digest"])

    def test_zstd_layout_matches_what_skopeo_pulls(self):
        # With zstd, containers/image is served the OCI manifest (zstd layers).
        with Instance(NIXERY_LAYER_COMPRESSION="zstd") as inst:
            offline = Offline(self.work, inst.package_set, NIXERY_LAYER_COMPRESSION="zstd")
            layout = self.work / "layout"
            build(offline.env, "app-b", "--output", layout)
            entry = layout_entry(layout, "latest")
            self.assertEqual(skopeo_digest(inst, "app-b", "latest"), entry["digest"])
            manifest = json.loads(layout_blob(layout, entry["digest"]))
            self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {ZSTD_LAYER})

    def test_two_platforms_layout_holds_the_registrys_index(self):
        # NIXERY_PLATFORMS of two: the layout names the OCI image index the
        # registry serves an OCI client, the archive holds the host's image
        # of the manifest list the registry serves Docker.
        platforms = {"NIXERY_PLATFORMS": "linux/amd64,linux/arm64",
                     "NIX_CONFIG": base_environment()["NIX_CONFIG"] + "extra-platforms = aarch64-linux\n"}
        index_type = "application/vnd.oci.image.index.v1+json"
        list_type = "application/vnd.docker.distribution.manifest.list.v2+json"
        with Instance(**platforms) as inst:
            offline = Offline(self.work, inst.package_set, **platforms)
            layout, archive = self.work / "layout", self.work / "whichsystem.tar"
            out = build(offline.env, "whichsystem:v1", "--output", layout, "--docker-archive", archive).stdout
            entry = layout_entry(layout, "v1")
            self.assertEqual(entry["mediaType"], index_type)
            self.assertEqual(printed(out, "oci-layout"), entry["digest"])
            served = inst.manifest("whichsystem", "v1", accept=index_type + ", " + OCI)
            self.assertEqual(served.header("Content-Type"), index_type)
            self.assertEqual(served.header("Docker-Content-Digest"), entry["digest"])
            self.assertEqual(layout_blob(layout, entry["digest"]), served.body)
            # The archive's one image: the host's Docker manifest, as a
            # client that takes no list gets it.
            single = inst.manifest("whichsystem", "v1", accept=DOCKER)
            self.assertEqual(single.header("Content-Type"), DOCKER)
            self.assertEqual(single.header("Docker-Content-Digest"), printed(out, "docker-archive"))
            # Nor does the archive need the other platforms: a package that
            # cannot be built for arm64 makes an amd64 archive.
            noarm = self.work / "noarm.tar"
            build(offline.env, "noarm:v1", "--docker-archive", noarm)
        with tarfile.open(noarm) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
            config = json.load(tar.extractfile(manifest[0]["Config"]))
        self.assertEqual(config["architecture"], "amd64")
        self.assertEqual(manifest[0]["RepoTags"], ["noarm:v1"])
        # Both platforms' images are in the layout, whole.
        index = json.loads(layout_blob(layout, entry["digest"]))
        self.assertEqual([m["platform"]["architecture"] for m in index["manifests"]], ["amd64", "arm64"])
        for child in index["manifests"]:
            manifest = json.loads(layout_blob(layout, child["digest"]))
            config = json.loads(layout_blob(layout, manifest["config"]["digest"]))
            self.assertEqual(config["architecture"], child["platform"]["architecture"])
            for layer in manifest["layers"]:
                self.assertEqual(len(layout_blob(layout, layer["digest"])), layer["size"])
        # skopeo picks the arm64 image out of the layout.
        inspected = json.loads(run(["skopeo", "--override-arch", "arm64", "inspect", "oci:%s:v1" % layout]).stdout)
        self.assertEqual(inspected["Architecture"], "arm64")

    def test_a_layout_takes_more_images_and_refuses_other_directories(self):
        offline = Offline(self.work, make_package_set(self.work))
        layout = self.work / "layout"
        build(offline.env, "app-a:one", "--output", layout)
        build(offline.env, "app-b:two", "--output", layout)
        one, two = layout_entry(layout, "one"), layout_entry(layout, "two")
        self.assertNotEqual(one["digest"], two["digest"])
        # The same name again replaces its entry; nothing is duplicated.
        build(offline.env, "app-c:one", "--output", layout)
        self.assertEqual(len(json.loads((layout / "index.json").read_text())["manifests"]), 2)
        self.assertNotEqual(layout_entry(layout, "one")["digest"], one["digest"])
        for tag in ("one", "two"):
            run(["umoci", "stat", "--image", "%s:%s" % (layout, tag)])

        # A directory with other files in it is not written to, and no
        # image is built for it.
        other = self.work / "other"
        other.mkdir()
        (other / "notes.txt").write_text("mine\n")
        r = build(offline.env, "hardlinks", "--output", other, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("neither empty nor an OCI image layout", r.stderr.decode())
        self.assertEqual(sorted(p.name for p in other.iterdir()), ["notes.txt"])
        self.assertNotIn(b"image built", r.stderr)

    def test_a_write_that_was_killed_is_written_again(self):
        # What a `nixery build` killed while copying blobs (Ctrl-C, the
        # OOM killer, a power cut) leaves: a layout directory with only
        # blobs/ (and a staging file in it), and the archive's staging
        # file beside the archive. The same command again writes both.
        offline = Offline(self.work, make_package_set(self.work))
        layout, out = self.work / "layout", self.work / "out"
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        out.mkdir()
        hour_ago = time.time() - 3700
        leftovers = [blobs / "0123456789abcdef.tmp", out / ".app-a.tar.0123456789abcdef.tmp"]
        kept = [out / ".app-a.tar.fedcba9876543210.tmp",  # another writer's, still at work
                out / "0123456789abcdef.tmp"]             # not a staging file of this archive
        for f in leftovers + kept:
            f.write_bytes(b"partial")
        for f in leftovers + kept[1:]:
            os.utime(f, (hour_ago, hour_ago))
        r = build(offline.env, "app-a", "--output", layout, "--docker-archive", out / "app-a.tar")
        self.assertEqual(r.returncode, 0, r)
        run(["umoci", "stat", "--image", "%s:latest" % layout])
        with tarfile.open(out / "app-a.tar") as tar:
            self.assertIn("manifest.json", tar.getnames())
        for f in leftovers:
            self.assertFalse(f.exists(), f)
        for f in kept:
            self.assertTrue(f.exists(), f)

    def test_ctrl_c_stops_nix_s_builder_and_writes_nothing(self):
        # Ctrl-C reaches only nixery (Nix runs in process groups of its
        # own); killed with it, a single-user Nix could not stop its
        # builder, which ran on as init's until it ended.
        image, marker = "pause.s30.v43", b"pause-30-43-"
        offline = Offline(self.work, make_package_set(self.work))
        layout = self.work / "layout"
        code, _, err, _ = interrupted([NIXERY, "build", image, "--output", layout], offline.env,
                                      lambda: running_with(marker))
        self.assertEqual(code, 130, err)
        self.assertIn(b'stopped by SIGINT; "%s" not written' % str(layout).encode(), err)
        wait_for(lambda: not running_with(marker), 5, "the builder to stop with the command")
        self.assertFalse((layout / "index.json").exists())

    def test_prebuild_on_ctrl_c_stops_nix_s_builder_and_builds_no_more(self):
        # As `nixery build` does: a single-user Nix is stopped with its
        # builder, and the images not built yet are named.
        image, marker = "pause.s30.v44", b"pause-30-44-"
        offline = Offline(self.work, make_package_set(self.work))
        code, out, err, _ = interrupted([NIXERY, "prebuild", image, "app-a"], offline.env,
                                        lambda: running_with(marker))
        self.assertEqual(code, 130, err)
        self.assertIn(b"stopped by SIGINT; not built: pause.s30.v44:latest, app-a:latest", err)
        self.assertEqual(out, b"")
        wait_for(lambda: not running_with(marker), 5, "the builder to stop with the command")

    @unittest.skipUnless(Path("/usr/bin/time").exists(), "needs GNU time (Debian's time)")
    def test_a_large_layer_passes_in_bounded_memory(self):
        # `big` is one 48 MiB layer that does not compress. Built and
        # packed first; then, from the cache, only copied.
        offline = Offline(self.work, make_package_set(self.work))
        build(offline.env, "big", "--output", self.work / "first")
        layout, archive = self.work / "layout", self.work / "big.tar"
        # GNU time reports its child's peak RSS (ru_maxrss, in KiB); the
        # floor is time's own small RSS, not this test process's.
        r = run(["/usr/bin/time", "-f", "peak %M", str(NIXERY), "build", "big", "--output", str(layout),
                 "--docker-archive", str(archive)], env=offline.env)
        peak = int(r.stderr.decode().strip().splitlines()[-1].split()[1]) * 1024
        manifest = json.loads(layout_blob(layout, layout_entry(layout, "latest")["digest"]))
        largest = max(l["size"] for l in manifest["layers"])
        self.assertGreater(largest, 48 << 20)
        self.assertGreater(archive.stat().st_size, largest)
        print("\n[nixery build: a %d MiB layer into a layout and an archive, peak RSS %.1f MiB]"
              % (largest >> 20, peak / (1 << 20)))
        self.assertLess(peak, largest // 2, "the copy held the layer")

    def test_mistakes_are_refused_with_words(self):
        offline = Offline(self.work, make_package_set(self.work))
        out = self.work / "out"
        for args, code, words in [
                (["Bad Name", "--output", out], 2, "not a valid image name"),
                (["app-a:no!", "--output", out], 2, "not a valid tag"),
                (["app-a@sha256:" + "0" * 64, "--output", out], 2, "not a valid image name"),
                (["app-a"], 2, "nothing to write"),
                (["app-a", "--output"], 2, "--output needs a directory"),
                (["app-a", "--frobnicate"], 2, "unknown option"),
                (["nosuchpackage", "--output", out], 1, 'package "nosuchpackage" is not in the package set'),
                (["app-a", "--docker-archive", self.work / "missing" / "a.tar"], 1, "does not exist"),
                (["app-a", "--output", out, "--docker-archive", out], 2, "name the same path")]:
            with self.subTest(args=args):
                r = build(offline.env, *args, check=False)
                self.assertEqual(r.returncode, code, r)
                self.assertIn(words, r.stderr.decode())
                self.assertEqual(r.stdout, b"")
                self.assertFalse(out.exists())
        # Without a storage configured, it says what is missing.
        env = dict(offline.env)
        del env["STORAGE_PATH"]
        r = build(env, "app-a", "--output", out, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("STORAGE_PATH", r.stderr.decode())


class OutputOnAFullDiskTest(TestCase):
    """Commands that print what an operator redirects to a file fail, with
    words, when it cannot all be written, rather than exit 0 with the file
    cut short."""

    def test_printing_to_a_full_disk_fails(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-full-"))
        try:
            offline = Offline(work, make_package_set(work))
            graph = Path(__file__).parent / "data" / "worked-example.json"
            for args in (["layers", "--graph", str(graph)], ["nginx-config"]):
                with self.subTest(args=args), open("/dev/full", "wb") as full:
                    r = subprocess.run([str(NIXERY)] + args, env=offline.env, stdout=full,
                                       stderr=subprocess.PIPE, timeout=60)
                    self.assertEqual(r.returncode, 1, r)
                    self.assertIn("writing to standard output failed", r.stderr.decode())
        finally:
            if not keep_dirs():
                shutil.rmtree(work, ignore_errors=True)


class PrebuildForAnInstanceTest(TestCase):
    def setUp(self):
        self.work = Path(tempfile.mkdtemp(prefix="nixery-build-"))

    def tearDown(self):
        if not keep_dirs():
            shutil.rmtree(self.work, ignore_errors=True)

    def test_a_build_against_a_running_instance_is_served_without_building(self):
        with Instance(salt=fresh_salt()) as inst:
            layout = self.work / "layout"
            out = build(inst.env, "slow:latest", "--output", layout).stdout
            self.assertEqual(len(inst.builds("slow")), 1)
            # The instance serves it from the cache it shares: the same
            # manifest, and no build of its own.
            pulled = self.work / "pulled"
            skopeo_copy(inst, "slow", "latest", pulled, oci=True)
            served = inst.manifest("slow", "latest", accept=OCI)
            self.assertEqual(served.header("Docker-Content-Digest"), printed(out, "oci-layout"))
            self.assertEqual(len(inst.builds("slow")), 1)
            self.assertFalse([r for r in inst.log_records() if r.get("msg") == "image built"],
                             "the pool built an image")
            self.assertEqual(inst.packed_layers(), [])

    def test_a_build_while_the_pool_builds_the_same_image_waits_for_it(self):
        with Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=60) as inst:
            pull, pulled = in_background(lambda: inst.manifest("pause.s6.v3", accept=OCI))
            deadline = time.time() + 30
            while not inst.builds("pause.s6.v3") and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(len(inst.builds("pause.s6.v3")), 1, "the pool's build did not start")
            out = build(inst.env, "pause.s6.v3", "--output", self.work / "layout").stdout
            pull.join(120)
            served = pulled["result"]
            self.assertEqual(served.status, 200, served)
            self.assertEqual(served.header("Docker-Content-Digest"), printed(out, "oci-layout"))
            # One build: the command waited on the image's lock and took
            # what the pool recorded.
            self.assertEqual(len(inst.builds("pause.s6.v3")), 1)

    def test_ctrl_c_ends_a_wait_for_the_pool_s_build(self):
        # The pool builds the image for 30 s; the command, after its
        # evaluation (about a second), waits on the image's lock: Ctrl-C
        # ends that wait at once rather than when the pool's build is done.
        with Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=60) as inst:
            in_background(lambda: inst.manifest("pause.s30.v45", accept=OCI))
            wait_for(lambda: inst.builds("pause.s30.v45"), 30, "the pool's build to start")
            layout = self.work / "layout"
            started = time.time()
            code, _, err, took = interrupted([NIXERY, "build", "pause.s30.v45", "--output", layout],
                                             inst.env, lambda: time.time() > started + 5)
            self.assertEqual(code, 130, err)
            self.assertLess(took, 5, err)
            self.assertFalse((layout / "index.json").exists())
            # The pool's build goes on.
            self.assertTrue(running_with(b"pause-30-45-"))


class DockerLoadTest(DaemonsCase):
    def test_docker_loads_and_runs_the_archive(self):
        work = Path(tempfile.mkdtemp(prefix="nixery-build-"))
        try:
            with Instance() as inst:
                archive = work / "app-a.tar"
                out = build(inst.env, "app-a:v2", "--docker-archive", archive).stdout
                served = inst.manifest("app-a", "v2", accept=DOCKER)
                self.assertEqual(served.header("Docker-Content-Digest"), printed(out, "docker-archive"))
                config_digest = json.loads(served.body)["config"]["digest"]
            loaded = self.docker("load", "-i", str(archive)).stdout.decode()
            self.assertIn("app-a:v2", loaded)
            # Docker's image ID is the config's digest: the registry's image.
            image_id = self.docker("image", "inspect", "--format", "{{.Id}}", "app-a:v2").stdout.decode().strip()
            self.assertEqual(image_id, config_digest)
            ran = self.docker("run", "--rm", "--network=none", "app-a:v2", "/bin/app-a").stdout.decode()
            self.assertEqual(ran, "app-a uses greetings from libgreet\n")
            self.docker("rmi", "app-a:v2")
        finally:
            if not keep_dirs():
                shutil.rmtree(work, ignore_errors=True)
