"""Pulling images with real clients (skopeo into an OCI layout, umoci to
unpack it) and running their programs in the unpacked root filesystem."""

import json
import os
import tempfile
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, in_rootfs, run, skopeo_copy, unpack


@unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
class PullTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.instance = Instance().__enter__()
        cls.work = Path(tempfile.mkdtemp(prefix="nixery-pull-"))

    @classmethod
    def tearDownClass(cls):
        cls.instance.__exit__(None, None, None)
        run(["rm", "-rf", str(cls.work)])

    def pull(self, name, tag="latest", oci=False):
        layout = self.work / "layout"
        ref = name.replace("/", "_") + ("-oci" if oci else "")
        skopeo_copy(self.instance, name, tag, layout, ref, oci=oci)
        return unpack(layout, ref, self.work / ("bundle-" + ref)), layout, ref

    def image_config(self, layout, ref):
        index = json.loads((layout / "index.json").read_text())
        desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == ref)
        manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_text())
        return manifest, json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())

    def test_shell_image_runs(self):
        rootfs, layout, ref = self.pull("shell/hello")
        self.assertEqual(in_rootfs(rootfs, "/bin/hello"), "Hello, world!\n")
        self.assertEqual(in_rootfs(rootfs, "/bin/bash", "-c", "echo from bash; id -u"), "from bash\n0\n")
        # The top layer: /tmp, /usr/bin/env, minimal users and groups.
        self.assertEqual(oct(os.stat(rootfs / "tmp").st_mode & 0o7777), "0o1777")
        self.assertIn("env", os.readlink(rootfs / "usr/bin/env"))
        self.assertEqual(in_rootfs(rootfs, "/usr/bin/env", "echo", "via env"), "via env\n")
        self.assertTrue((rootfs / "etc/passwd").read_text().startswith("root:x:0:0:"))
        self.assertIn("nobody", (rootfs / "etc/group").read_text())
        # cacert is added to every image when the package set has it.
        self.assertTrue((rootfs / "etc/ssl/certs/ca-bundle.crt").exists())

        manifest, config = self.image_config(layout, ref)
        self.assertEqual(config["architecture"], "amd64")
        self.assertEqual(config["os"], "linux")
        self.assertEqual(config["config"]["Cmd"], ["bash"])
        self.assertTrue(any(e.startswith("PATH=") for e in config["config"]["Env"]))
        self.assertTrue(any(e.startswith("SSL_CERT_FILE=") for e in config["config"]["Env"]))
        self.assertEqual(len(config["rootfs"]["diff_ids"]), len(manifest["layers"]))
        self.assertEqual(len(config["history"]), len(manifest["layers"]))
        history = " ".join(h["created_by"] for h in config["history"])
        self.assertIn("hello-2.12", history)
        self.assertIn("busybox", history)

    def test_oci_pull_and_implicit_packages(self):
        rootfs, layout, ref = self.pull("app-a", oci=True)
        self.assertEqual(in_rootfs(rootfs, "/bin/app-a"), "app-a uses greetings from libgreet\n")
        self.assertTrue((rootfs / "etc/services").exists(), "iana-etc is in every image")
        manifest, config = self.image_config(layout, ref)
        self.assertNotIn("Cmd", config["config"])

    def test_hard_links_modes_and_symlinks_survive(self):
        rootfs, _, _ = self.pull("hardlinks")
        store = next((rootfs / "nix/store").glob("*-hardlinks-1.0"))
        one, two, three = (store / "share" / n for n in ("one", "two", "three"))
        self.assertEqual(os.stat(one).st_ino, os.stat(two).st_ino)
        self.assertNotEqual(os.stat(one).st_ino, os.stat(three).st_ino)
        self.assertEqual(one.read_text(), "linked content\n")
        self.assertEqual(oct(os.stat(one).st_mode & 0o777), "0o444")
        # The top layer links into the store.
        self.assertEqual(os.readlink(rootfs / "share/one"), "/nix/store/%s/share/one" % store.name)

    def test_shared_layers_have_one_digest_and_are_packed_once(self):
        first = self.instance.manifest("app-a/app-b").json()
        second = self.instance.manifest("app-a/app-c").json()
        shared = {l["digest"] for l in first["layers"]} & {l["digest"] for l in second["layers"]}
        # app-a's layer and the layer of what both packages use are shared.
        self.assertGreaterEqual(len(shared), 2)
        packed = self.instance.packed_layers()
        for digest in shared:
            self.assertEqual(packed.count(digest), 1, digest)
        build = self.instance.builds("app-a/app-c")[-1]
        self.assertGreaterEqual(build["layers_reused"], len(shared))

    def test_skopeo_inspect(self):
        # skopeo inspect reads the tag list and the config as well.
        self.assertEqual(self.instance.manifest("app-a", "v7").status, 200)
        out = run(["skopeo", "inspect", "--tls-verify=false",
                   "docker://127.0.0.1:%d/app-a:v7" % self.instance.port]).stdout
        info = json.loads(out)
        self.assertEqual(info["Architecture"], "amd64")
        # A local package set gives every tag the same image: only latest
        # is listed (made-up tags would fill the list; test_hostile.py).
        self.assertNotIn("v7", info["RepoTags"])
        self.assertIn("latest", info["RepoTags"])

    def test_layers_are_reproducible_across_instances(self):
        name = "app-b/hardlinks"
        here = self.instance.manifest(name)
        # Its own state and storage, the same package set (the labels name it).
        with Instance(package_set=self.instance.package_set) as other:
            there = other.manifest(name)
            self.assertEqual(there.header("Docker-Content-Digest"), here.header("Docker-Content-Digest"))
            self.assertEqual(there.body, here.body)


class LayersCommandTest(TestCase):
    """`nixery layers` on the JSON Nix writes for exportReferencesGraph."""

    def test_worked_example_at_every_budget(self):
        graph = Path(__file__).parent / "data" / "worked-example.json"
        popularity = Path(__file__).parent / "data" / "worked-example-popularity.json"
        expected = {10: ["G", "E", "DF", "C", "B", "A"], 4: ["G", "E", "DF", "ABC"], 3: ["G", "E", "ABCDF"],
                    2: ["G", "ABCDEF"], 1: ["ABCDEFG"]}
        for budget, layers in expected.items():
            out = run([str(Path(__file__).parents[2] / "build/nixery"), "layers", "--graph", str(graph),
                       "--popularity", str(popularity), "--budget", str(budget)]).stdout
            got = ["".join(p[-1] for p in l["paths"]) for l in json.loads(out)["layers"]]
            self.assertEqual(got, layers, budget)

    def test_graph_written_by_nix(self):
        with tempfile.TemporaryDirectory() as tmp:
            from harness import make_package_set, base_environment
            pkgs = make_package_set(tmp)
            env = base_environment()
            graph = run(["nix-build", "--no-out-link", "-E", "(import %s {}).graphOf (import %s {}).app-a" % (pkgs, pkgs)],
                        env=env).stdout.decode().strip()
            out = json.loads(run([str(Path(__file__).parents[2] / "build/nixery"), "layers", "--graph", graph]).stdout)
            paths = [p for l in out["layers"] for p in l["paths"]]
            self.assertEqual(len(paths), len(set(paths)))
            self.assertTrue(any(p.endswith("-app-a") for p in paths))
            self.assertTrue(any(p.endswith("-libgreet-1.0") for p in paths))
            for layer in out["layers"]:
                self.assertEqual(layer["paths"], sorted(layer["paths"]))
                self.assertGreater(layer["size"], 0)

    def test_bad_input_is_reported(self):
        r = run([str(Path(__file__).parents[2] / "build/nixery"), "layers", "--graph", "/nonexistent"], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"/nonexistent", r.stderr)
        r = run([str(Path(__file__).parents[2] / "build/nixery"), "layers"], check=False)
        self.assertEqual(r.returncode, 2)
