"""One evaluation per cold build (issue 15, section 2): image.nix is
evaluated once in read-write mode and nix-store realises exactly the
derivations it returned, so import-from-derivation works; the nixpkgs
configuration is the operator's (NIXERY_NIXPKGS_CONFIG), never the
evaluating user's; a package that fails to evaluate is named; a channel is
fetched once per revision into the store."""

import functools
import http.server
import os
import shutil
import tempfile
import time
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, make_package_set, skopeo_copy, unpack
from test_sources import ChannelServer


def nix_runs(inst, operation):
    """How many times the instance ran Nix for `operation` (debug log)."""
    return sum(1 for r in inst.log_records()
               if r.get("msg") == "running nix" and r.get("operation") == operation)


class EvaluationTest(TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-eval-"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_a_cold_build_evaluates_once(self):
        with Instance(NIXERY_LOG_LEVEL="debug") as inst:
            self.assertEqual(inst.manifest("app-a/hardlinks").status, 200)
            self.assertEqual(nix_runs(inst, "evaluate"), 1)
            self.assertEqual(nix_runs(inst, "build"), 1)
            # A refused package costs one evaluation too, not three.
            self.assertEqual(inst.manifest("evaluation.unfree").status, 403)
            self.assertEqual(nix_runs(inst, "evaluate"), 2)
            self.assertEqual(nix_runs(inst, "build"), 1)

    @unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
    def test_import_from_derivation(self):
        with Instance() as inst:
            skopeo_copy(inst, "evaluation.fromifd", "latest", self.dir / "layout")
            rootfs = unpack(self.dir / "layout", "image", self.dir / "bundle")
            found = list((rootfs / "nix" / "store").glob("*-from-ifd-*/share/ifd"))
            self.assertEqual(len(found), 1, found)
            self.assertEqual(found[0].read_text().strip(), "made by a derivation during evaluation")

    def test_an_evaluation_is_bounded_by_nix_timeout(self):
        # Not by NIXERY_BUILD_TIMEOUT, the bound of the whole build.
        with Instance(NIX_TIMEOUT=2) as inst:
            started = time.monotonic()
            r = inst.manifest("app-a/evaluation.endless")
            self.assertLess(time.monotonic() - started, 30)
            error = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out",
                                             "Nix (evaluate)", "NIX_TIMEOUT (2 s)",
                                             'while evaluating package "evaluation.endless"')
            self.assertEqual(error["detail"]["limit"], "NIX_TIMEOUT")
            self.assertEqual(error["detail"]["package"], "evaluation.endless")

    def test_a_build_leaves_no_gc_roots(self):
        # A build's roots keep its paths from Nix's garbage collector while
        # it runs; they go when it ends, built or failed.
        with Instance() as inst:
            self.assertEqual(inst.manifest("app-b").status, 200)
            self.assertRegistryError(inst.manifest("broken"), 404, "MANIFEST_UNKNOWN")
            roots = inst.state / "gcroots"
            self.assertEqual(list(roots.iterdir()) if roots.exists() else [], [])

    def test_failing_package_is_named(self):
        with Instance() as inst:
            r = inst.manifest("hello/evaluation.aborts")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", 'package "evaluation.aborts"',
                                           "this package aborts")
            self.assertEqual(err["detail"]["package"], "evaluation.aborts")
            self.assertNotIn("nixery-evaluating-package", r.body.decode())
            r = inst.manifest("evaluation.usesmissing/app-a")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", 'package "evaluation.usesmissing"',
                                           "nixeryTestNoSuchAttribute")
            self.assertEqual(err["detail"]["package"], "evaluation.usesmissing")
            # A throw, as before.
            self.assertRegistryError(inst.manifest("refuses"), 404, "MANIFEST_UNKNOWN",
                                     'package "refuses"', "refuses to evaluate")
            # Missing attributes are still answered as such.
            self.assertRegistryError(inst.manifest("hello/nosuchpackage"), 404, "MANIFEST_UNKNOWN",
                                     '"nosuchpackage"', "not in the package set")

    def test_unfree_is_refused_by_the_registry_configuration(self):
        # The environment the service runs in allows unfree packages the
        # ways nixpkgs reads: neither may count.
        home = self.dir / "home"
        (home / ".config" / "nixpkgs").mkdir(parents=True)
        (home / ".config" / "nixpkgs" / "config.nix").write_text("{ allowUnfree = true; }\n")
        pkgs = make_package_set(self.dir)
        with Instance(package_set=pkgs, HOME=home, NIXPKGS_ALLOW_UNFREE="1") as inst:
            r = inst.manifest("evaluation.unfree")
            err = self.assertRegistryError(r, 403, "DENIED", 'package "evaluation.unfree"',
                                           "refused by this registry's configuration",
                                           "unfree license")
            self.assertEqual(err["detail"]["package"], "evaluation.unfree")
            body = r.body.decode()
            self.assertNotIn("NIXPKGS_ALLOW_UNFREE", body)
            self.assertNotIn(str(pkgs), body)
            # In nixpkgs' wording since 2026.
            r = inst.manifest("evaluation.insecure")
            err = self.assertRegistryError(r, 403, "DENIED", 'package "evaluation.insecure"',
                                           "refused by this registry's configuration",
                                           "\u2018insecure-1.0\u2019 is marked as insecure")
            self.assertEqual(err["detail"]["package"], "evaluation.insecure")
            self.assertNotIn(str(pkgs), r.body.decode())
            self.assertNotIn("allowing this package", r.body.decode())
        config = self.dir / "nixpkgs.nix"
        config.write_text('{ allowUnfree = true; permittedInsecurePackages = [ "insecure-1.0" ]; }\n')
        with Instance(package_set=pkgs, NIXERY_NIXPKGS_CONFIG=config) as inst:
            self.assertEqual(inst.manifest("evaluation.unfree").status, 200)
            self.assertEqual(inst.manifest("evaluation.insecure").status, 200)
        # A broken one fails pulls without showing where it is.
        config.write_text("{ allowUnfree = true;\n")
        with Instance(package_set=pkgs, NIXERY_NIXPKGS_CONFIG=config) as inst:
            r = inst.manifest("evaluation.unfree")
            self.assertGreaterEqual(r.status, 400, r)
            self.assertIn("<nixpkgs config>", r.body.decode())
            self.assertNotIn(str(self.dir), r.body.decode())


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class ChannelOncePerRevisionTest(TestCase):
    def test_a_channel_revision_is_fetched_once_and_rooted(self):
        channels = ChannelServer()
        self.addCleanup(channels.close)
        # Count the requests Nix makes.
        channels.server.RequestHandlerClass = functools.partial(CountingHandler, directory=str(channels.dir))
        channels.server.requests = []
        work = Path(tempfile.mkdtemp(prefix="nixery-channel-pkgs-"))
        self.addCleanup(shutil.rmtree, work, True)
        channels.publish("test-channel", make_package_set(work), "one")
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_CHANNEL="test-channel",
                      NIXERY_CHANNEL_URL=channels.url, NIXERY_LOG_LEVEL="debug") as inst:
            for name in ("stamp", "hello", "app-a/stamp"):
                self.assertEqual(inst.manifest(name).status, 200)
            self.assertEqual(channels.server.requests, ["/test-channel.tar.gz"])
            self.assertEqual(nix_runs(inst, "fetch channel"), 2)  # download, then the GC root
            # One root, and beside it what tells a later check whether the
            # channel moved (the tarball's date and length here).
            roots = [p for p in (inst.state / "channels").iterdir() if p.is_symlink()]
            self.assertEqual(len(roots), 1)
            validator = roots[0].with_name(roots[0].name + ".validator")
            self.assertIn("last-modified", validator.read_text())
            target = os.readlink(roots[0])
            self.assertTrue(target.startswith("/nix/store/") and target.endswith("-source"), target)
            self.assertTrue((Path(target) / "stamp.nix").exists())
