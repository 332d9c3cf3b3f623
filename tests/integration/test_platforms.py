"""One name, every platform (NIXERY_PLATFORMS): a manifest by tag is an OCI
image index or a Docker manifest list of one manifest per platform, chosen
by Accept; each platform's image is the one its "arm64/" name gives, built
as its own job; real clients (skopeo, podman, Docker) pick the platform
they ask for. This machine "builds" aarch64-linux with Nix's
extra-platforms: the test package set's builder is the host's static
busybox."""

import hashlib
import json
import shutil
import tempfile
import time
import unittest
from pathlib import Path

from test_serving import wait_for_pool_log
from harness import (Instance, TestCase, base_environment, have, podman_argv, run, unpack)
from test_slow_builds import fresh_salt
from test_slow_clients import DaemonsCase

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# What containerd (and so Docker) sends.
CONTAINERD_ACCEPT = ", ".join([DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"])

TWO = "linux/amd64,linux/arm64"


def two_platforms(**settings):
    env = dict(NIXERY_PLATFORMS=TWO,
               NIX_CONFIG=base_environment()["NIX_CONFIG"] + "extra-platforms = aarch64-linux\n")
    env.update(settings)
    return Instance(**env)


def digest(body):
    return "sha256:" + hashlib.sha256(body).hexdigest()


class IndexTest(TestCase):
    """One instance for the tests that only read what it serves."""

    @classmethod
    def setUpClass(cls):
        cls.inst = two_platforms()
        cls.inst.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.inst.__exit__(None, None, None)

    def get_ok(self, path, accept=None):
        r = self.inst.get(path, {"Accept": accept} if accept else {})
        self.assertEqual(r.status, 200, r)
        return r

    def test_index_and_list_by_accept_with_each_platform_by_digest(self):
        inst = self.inst
        oci = self.get_ok("/v2/whichsystem/manifests/latest", OCI_INDEX + ", " + OCI_MANIFEST)
        self.assertEqual(oci.header("Content-Type"), OCI_INDEX)
        self.assertEqual(oci.header("Docker-Content-Digest"), digest(oci.body))
        self.assertEqual(oci.header("Vary"), "Accept")
        index = oci.json()
        self.assertEqual(index["mediaType"], OCI_INDEX)
        self.assertEqual([m["platform"] for m in index["manifests"]],
                         [{"architecture": "amd64", "os": "linux"},
                          {"architecture": "arm64", "os": "linux", "variant": "v8"}])
        annotations = index["annotations"]
        self.assertEqual(annotations["org.opencontainers.image.title"], "whichsystem")
        self.assertEqual(annotations["org.opencontainers.image.created"], "1970-01-01T00:00:01Z")
        self.assertNotIn("org.nixos.nixery.packages", annotations)  # differs by platform

        docker = self.get_ok("/v2/whichsystem/manifests/latest", CONTAINERD_ACCEPT)
        self.assertEqual(docker.header("Content-Type"), DOCKER_LIST)
        self.assertEqual(docker.header("Docker-Content-Digest"), digest(docker.body))
        listed = docker.json()
        self.assertEqual(listed["mediaType"], DOCKER_LIST)
        self.assertNotIn("annotations", listed)

        for doc, manifest_type in ((index, OCI_MANIFEST), (listed, DOCKER_MANIFEST)):
            systems = []
            for entry in doc["manifests"]:
                self.assertEqual(entry["mediaType"], manifest_type)
                child = self.get_ok("/v2/whichsystem/manifests/" + entry["digest"])
                self.assertEqual(child.header("Content-Type"), manifest_type)
                self.assertEqual(child.header("Docker-Content-Digest"), entry["digest"])
                self.assertEqual(digest(child.body), entry["digest"])
                self.assertEqual(len(child.body), entry["size"])
                head = inst.head("/v2/whichsystem/manifests/" + entry["digest"])
                self.assertEqual(head.status, 200)
                self.assertEqual(head.header("Docker-Content-Digest"), entry["digest"])
                config = self.get_ok("/v2/whichsystem/blobs/" + child.json()["config"]["digest"]).json()
                self.assertEqual(config["architecture"], entry["platform"]["architecture"])
                self.assertEqual(config.get("variant"), entry["platform"].get("variant"))
                packages = json.loads(config["config"]["Labels"]["org.nixos.nixery.packages"])
                systems.append(Path(packages["whichsystem"]).name)
            # Each platform has its own build of the package.
            self.assertEqual(len(set(systems)), 2, systems)

        # The index and the list by digest, GET and HEAD, as a manifest is;
        # within one minute of nginx's clock (its links are per minute).
        if time.localtime().tm_sec > 50:
            time.sleep(61 - time.localtime().tm_sec)
        for served, media_type in ((oci, OCI_INDEX), (docker, DOCKER_LIST)):
            d = served.header("Docker-Content-Digest")
            by_digest = self.get_ok("/v2/whichsystem/manifests/" + d)
            self.assertEqual(by_digest.body, served.body)
            self.assertEqual(by_digest.header("Content-Type"), media_type)
            self.assertEqual(by_digest.header("Docker-Content-Digest"), d)
            head = inst.head("/v2/whichsystem/manifests/" + d)
            self.assertEqual((head.status, head.header("Docker-Content-Digest")), (200, d))
            # From then on nginx sends it alone, from the link the pool left,
            # with the same type (nginx/storage-location.conf.in).
            (link,) = (inst.state / "served" / "manifests" / d[7:]).iterdir()
            self.assertEqual(link.suffix, {OCI_INDEX: ".oci-index", DOCKER_LIST: ".docker-list"}[media_type])
            again = self.get_ok("/v2/whichsystem/manifests/" + d)
            self.assertEqual((again.body, again.header("Content-Type")), (served.body, media_type))
            self.assertEqual(wait_for_pool_log(inst, "/v2/whichsystem/manifests/" + d, 1), 1)
            # Not a blob.
            self.assertEqual(inst.get("/v2/whichsystem/blobs/" + d).status, 404)
        head = inst.head("/v2/whichsystem/manifests/latest", {"Accept": CONTAINERD_ACCEPT})
        self.assertEqual((head.status, head.header("Docker-Content-Digest")),
                         (200, docker.header("Docker-Content-Digest")))

        # A client that accepts no index gets the host's platform.
        plain = self.get_ok("/v2/whichsystem/manifests/latest")
        self.assertEqual(plain.header("Content-Type"), DOCKER_MANIFEST)
        self.assertEqual(plain.header("Docker-Content-Digest"), listed["manifests"][0]["digest"])
        plain_oci = self.get_ok("/v2/whichsystem/manifests/latest", OCI_MANIFEST)
        self.assertEqual(plain_oci.header("Docker-Content-Digest"), index["manifests"][0]["digest"])

        # The same bytes again (reproducible), and the arm64/ name is the
        # arm64 half of it: one build, shared.
        again = self.get_ok("/v2/whichsystem/manifests/latest", OCI_INDEX + ", " + OCI_MANIFEST)
        self.assertEqual(again.body, oci.body)
        arm = self.get_ok("/v2/arm64/whichsystem/manifests/latest")
        self.assertEqual(arm.header("Docker-Content-Digest"), listed["manifests"][1]["digest"])
        self.assertEqual(len(inst.builds("arm64/whichsystem")), 1)
        self.assertEqual(len(inst.builds("whichsystem")), 1)
        # The start page says so.
        self.assertIn(b"Every image is built for <code>linux/amd64</code>, <code>linux/arm64/v8</code>",
                      inst.get("/").body)

    def test_skopeo_and_podman_pull_the_platform_they_ask_for(self):
        inst = self.inst
        ref = "docker://127.0.0.1:%d/shell/whichsystem:latest" % inst.port
        raw = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--raw", ref]).stdout)
        self.assertIn(raw["mediaType"], (DOCKER_LIST, OCI_INDEX))
        self.assertEqual([m["platform"]["architecture"] for m in raw["manifests"]], ["amd64", "arm64"])
        arm_digest = raw["manifests"][1]["digest"]

        work = Path(tempfile.mkdtemp(prefix="nixery-platforms-"))
        self.addCleanup(shutil.rmtree, work, True)
        layout = work / "layout"
        for arch, system in (("arm64", "aarch64-linux"), (None, "x86_64-linux")):
            argv = ["skopeo"] + (["--override-arch", arch] if arch else []) + [
                "copy", "--src-tls-verify=false", ref, "oci:%s:%s" % (layout, arch or "default")]
            run(argv)
            rootfs = unpack(layout, arch or "default", work / ("bundle-" + (arch or "default")))
            # /bin/whichsystem links to the package built for that system.
            target = (rootfs / "bin" / "whichsystem").resolve(strict=False)
            store_path = Path(*Path(str(target).replace(str(rootfs), "", 1)).parts[:4])
            self.assertEqual((rootfs / str(store_path).lstrip("/") / "share" / "system").read_text(),
                             system + "\n")
            config = json.loads(run(["skopeo", "inspect", "--config", "oci:%s:%s" % (layout, arch or "default")]).stdout)
            self.assertEqual(config["architecture"], arch or "amd64")
        inspected = json.loads(run(["skopeo", "--override-arch", "arm64", "inspect", "--tls-verify=false", ref]).stdout)
        self.assertEqual(inspected["Architecture"], "arm64")
        arm_layers = json.loads(inst.get("/v2/shell/whichsystem/manifests/" + arm_digest).body)["layers"]
        self.assertEqual(inspected["Layers"], [layer["digest"] for layer in arm_layers])

        if not have("podman"):
            return
        podman = podman_argv(work / "podman")
        image = "127.0.0.1:%d/shell/whichsystem" % inst.port
        run(podman + ["pull", "--tls-verify=false", "--arch", "arm64", image])
        out = run(podman + ["image", "inspect", "--format", "{{.Architecture}} {{.Digest}}", image]).stdout.decode()
        self.assertEqual(out.split()[0], "arm64")
        run(podman + ["rmi", image])
        run(podman + ["pull", "--tls-verify=false", image])
        out = run(podman + ["image", "inspect", "--format", "{{.Architecture}}", image]).stdout.decode()
        self.assertEqual(out.strip(), "amd64")

    def test_a_failing_platform_is_named_and_fails_the_tag(self):
        inst = self.inst
        r = inst.manifest("noarm", accept=CONTAINERD_ACCEPT)
        self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "linux/arm64", "noarm cannot be built")
        # No index that lacks a platform. A client that takes a single
        # manifest gets the host's, which was built.
        single = inst.manifest("noarm")
        self.assertEqual(single.status, 200, single)
        self.assertEqual(single.header("Content-Type"), DOCKER_MANIFEST)
        self.assertRegistryError(inst.manifest("arm64/noarm"), 404, "MANIFEST_UNKNOWN", "noarm cannot be built")
        # The amd64 half was built, and no index lists it.
        built = ("SELECT COUNT(*) FROM builds b JOIN evaluations e ON e.image_key = b.image_key "
                 "JOIN images i ON i.closure_key = e.closure_key %s WHERE b.image = 'noarm' AND b.status = 200")
        with inst.db() as conn:
            self.assertEqual(conn.execute(built % "").fetchone()[0], 1)
            listed = "JOIN image_children c ON c.manifest_digest IN (i.docker_digest, i.oci_digest)"
            self.assertEqual(conn.execute(built % listed).fetchone()[0], 0)

    def test_a_package_not_available_on_a_platform_is_unknown_there(self):
        # nixpkgs refuses it like an unfree package, but it is not the
        # operator's to allow: no such image for that platform.
        inst = self.inst
        for name, prefix in (("evaluation.x86only", "linux/arm64/v8: "), ("arm64/evaluation.x86only", "")):
            r = inst.manifest(name, accept=CONTAINERD_ACCEPT)
            error = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN",
                                             prefix + 'package "evaluation.x86only" in "arm64/evaluation.x86only" '
                                             "is not available on this platform: Package \u2018x86only-1.0\u2019 "
                                             "is not available on the requested hostPlatform")
            self.assertEqual(error["detail"]["package"], "evaluation.x86only")
            self.assertNotIn("operator", error["message"])
        # The host's platform has it.
        self.assertEqual(inst.manifest("evaluation.x86only").status, 200)


class EarlyHeadersTest(TestCase):
    def test_platforms_build_in_parallel_and_an_index_may_come_after_early_headers(self):
        with two_platforms(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=2, NIXERY_MAX_BUILDS=2) as inst:
            started = time.time()
            r = inst.manifest("pause.s6.v1", accept=CONTAINERD_ACCEPT)
            elapsed = time.time() - started
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), DOCKER_LIST)
            self.assertEqual(len(r.json()["manifests"]), 2)
            # Two builds of six seconds each, side by side.
            self.assertLess(elapsed, 11.5)
            # The pool logs a request once it has answered: wait for the line.
            deadline = time.time() + 5
            while True:
                early = [x for x in inst.log_records()
                         if x.get("msg") == "request" and x.get("early_headers")]
                if any(x.get("image") == "pause.s6.v1" for x in early) or time.time() > deadline:
                    break
                time.sleep(0.05)
            self.assertTrue(any(x.get("image") == "pause.s6.v1" for x in early), early)
            self.assertEqual(sorted(b["image"] for b in inst.builds()), ["arm64/pause.s6.v1", "pause.s6.v1"])
            # A by-digest fetch of what came after early headers works too.
            d = digest(r.body)
            self.assertEqual(inst.get("/v2/pause.s6.v1/manifests/" + d).body, r.body)


    def test_a_platform_that_fails_at_once_fails_the_pull_before_early_headers(self):
        # The deadline leaves the failing platform's evaluation and build
        # seconds to spare on a busy machine, and comes well before the
        # other platform's build (12 s) ends.
        with two_platforms(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=6, NIXERY_MAX_BUILDS=2) as inst:
            started = time.time()
            r = inst.manifest("slownoarm", accept=CONTAINERD_ACCEPT)
            # A registry error, not a 200 whose body is cut when the other
            # platform's build ends.
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "linux/arm64", "slownoarm cannot be built")
            self.assertLess(time.time() - started, 10)
            # A client that reads no index waits for the host's platform only.
            single = inst.manifest("slownoarm")
            self.assertEqual(single.status, 200, single)
            self.assertEqual(single.header("Content-Type"), DOCKER_MANIFEST)


class NoBuilderTest(TestCase):
    def test_a_platform_without_a_builder_is_the_servers_failure(self):
        # NIXERY_PLATFORMS lists linux/arm64, but Nix here has no builder of
        # aarch64-linux (no extra-platforms): a 503 naming the platform,
        # logged for the operator and not remembered, not a 404 that blames
        # the image.
        with Instance(NIXERY_PLATFORMS=TWO, salt=fresh_salt(), expected_errors=["no builder"]) as inst:
            for _ in range(2):
                r = inst.manifest("pause.s0.v1", accept=CONTAINERD_ACCEPT)
                error = self.assertRegistryError(r, 503, "UNAVAILABLE", "linux/arm64/v8: ",
                                                 "no Nix builder of the server can build it")
                self.assertIn("'aarch64-linux'", error["message"])
            # The host's platform builds.
            single = inst.manifest("pause.s0.v1")
            self.assertEqual(single.status, 200, single)
            self.assertEqual(len(inst.builds("arm64/pause.s0.v1")), 2)


class PrebuildTest(TestCase):
    def test_prebuild_builds_every_platform(self):
        from harness import NIXERY
        with two_platforms() as inst:
            out = run([str(NIXERY), "prebuild", "app-b"], env=inst.env).stdout.decode()
            self.assertEqual(sorted(b["image"] for b in inst.builds()), ["app-b", "arm64/app-b"])
            served = inst.manifest("app-b", accept=CONTAINERD_ACCEPT)
            self.assertEqual(served.header("Content-Type"), DOCKER_LIST)
            # What prebuild made ready is what is served: no build more.
            self.assertEqual(out.split(), ["ready", "app-b:latest", served.header("Docker-Content-Digest")])
            self.assertEqual(len(inst.builds()), 2)


class GcTest(TestCase):
    def test_gc_keeps_the_platforms_of_a_kept_index(self):
        from test_deploy_gc import age_image, age_storage, gc
        with two_platforms() as inst:
            served = {}
            for name in ("whichsystem", "app-a"):
                r = inst.manifest(name, accept=CONTAINERD_ACCEPT)
                self.assertEqual(r.status, 200, r)
                served[name] = r
            keep, drop = served["whichsystem"], served["app-a"]

            def everything(r):
                """The index, its manifests and all they reference."""
                out = {digest(r.body)}
                for entry in r.json()["manifests"]:
                    # From storage: a pull by digest would be a use.
                    m = json.loads((inst.storage / "layers" / entry["digest"][7:]).read_bytes())
                    out |= {entry["digest"], m["config"]["digest"]} | {l["digest"] for l in m["layers"]}
                return out

            kept, dropped = everything(keep), everything(drop)
            for name in ("whichsystem", "arm64/whichsystem", "app-a", "arm64/app-a"):
                age_image(inst, name)
            age_storage(inst.storage)
            # A pull of the index by digest is a use of both platforms' images.
            by_digest = inst.get("/v2/whichsystem/manifests/" + digest(keep.body))
            self.assertEqual(by_digest.status, 200)

            out = gc(inst, "--keep-days", "0").stdout.decode()
            self.assertIn("deleted 2 images", out)
            stored = {"sha256:" + p.name for p in inst.blob_files()}
            self.assertTrue(kept <= stored, kept - stored)
            self.assertEqual((dropped - kept) & stored, set())
            self.assertIn(digest(drop.body), dropped - kept)
            # The kept index pulls whole, by digest, on both platforms.
            for d in kept:
                r = inst.get("/v2/whichsystem/blobs/" + d)
                if r.status == 404:  # a manifest, not a blob
                    r = inst.get("/v2/whichsystem/manifests/" + d)
                self.assertEqual(r.status, 200, d)
                self.assertEqual(digest(r.body), d)
            with inst.db() as conn:
                indexes = {r[0] for r in conn.execute("SELECT DISTINCT index_digest FROM image_children")}
            self.assertEqual(indexes, {digest(keep.body)})


class SharedIndexTest(TestCase):
    def test_gc_on_another_instance_keeps_an_index_in_use(self):
        # A serves the index; B, sharing the storage, never did. B's gc
        # keeps it while it keeps the images it lists (a shared record says
        # which), so a pull by the index's digest (Kubernetes pins them)
        # works on either, also after the objects' hour of grace.
        from test_deploy_gc import age_storage, gc
        with two_platforms() as a, two_platforms(package_set=a.package_set, STORAGE_PATH=a.storage) as b:
            b.storage = a.storage
            r = a.manifest("whichsystem", accept=CONTAINERD_ACCEPT)
            self.assertEqual(r.status, 200, r)
            index = digest(r.body)
            record = a.storage / "cache" / "indexes" / (index[7:] + ".json")
            self.assertEqual(sorted(json.loads(record.read_text())["manifests"]),
                             sorted(m["digest"] for m in r.json()["manifests"]))
            age_storage(a.storage, hours=2)  # used just now, written two hours ago
            gc(b)
            for inst in (a, b):
                by_digest = inst.get("/v2/whichsystem/manifests/" + index, {"Accept": CONTAINERD_ACCEPT})
                self.assertEqual(by_digest.status, 200, inst)
                self.assertEqual(digest(by_digest.body), index)
            # Unused for the whole window: the index goes, and its record with it.
            age_storage(a.storage, hours=72)
            out = gc(b, "--keep-days", "0").stdout.decode()
            self.assertIn("delete blob " + index, out)
            self.assertFalse((a.storage / "layers" / index[7:]).exists())
            self.assertFalse(record.exists())
            # A record whose index is gone already (its gc was interrupted
            # between the two) goes alone, once past the grace.
            orphan = record.parent / ("e" * 64 + ".json")
            orphan.write_text(json.dumps({"manifests": ["sha256:" + "f" * 64]}))
            age_storage(a.storage, hours=2)
            gc(b)
            self.assertFalse(orphan.exists())


class DefaultTest(TestCase):
    def test_one_platform_by_default_serves_a_manifest_as_before(self):
        with Instance() as inst:
            r = inst.manifest("app-a", accept=CONTAINERD_ACCEPT)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), DOCKER_MANIFEST)
            self.assertNotIn(b"Every image is built for", inst.get("/").body)
            with inst.db() as conn:
                self.assertEqual(conn.execute("SELECT COUNT(*) FROM image_children").fetchone()[0], 0)


class DockerPlatformTest(DaemonsCase):
    def test_docker_pull_platform_arm64_gets_arm64(self):
        with two_platforms() as inst:
            image = "127.0.0.1:%d/whichsystem:latest" % inst.port
            self.docker("pull", "--platform", "linux/arm64", image)
            arch = self.docker("image", "inspect", "--format", "{{.Architecture}} {{.Variant}}", image)
            self.assertEqual(arch.stdout.decode().split(), ["arm64", "v8"])
            self.docker("rmi", image)
            self.docker("pull", image)
            arch = self.docker("image", "inspect", "--format", "{{.Architecture}}", image)
            self.assertEqual(arch.stdout.decode().strip(), "amd64")
            self.docker("rmi", image)


if __name__ == "__main__":
    unittest.main()
