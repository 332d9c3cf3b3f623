"""Builds that fail: Nix's message reaches the client, failures are
remembered briefly, timeouts say so."""

import os
import shutil
import tempfile
import time
import unittest
from pathlib import Path

from harness import Instance, NixDaemon, TestCase, have
from test_slow_builds import fresh_salt


class FailureTest(TestCase):
    def test_failing_build_carries_nix_message_and_is_remembered(self):
        with Instance(expected_errors=[]) as inst:
            r = inst.manifest("broken/app-a")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "broken/app-a",
                                           "this package is broken on purpose")
            self.assertIn("broken on purpose", err["detail"]["log"])
            builds = inst.builds("broken/app-a")
            self.assertEqual(len(builds), 1)
            self.assertEqual(builds[0]["status"], 404)
            self.assertIn("broken on purpose", builds[0]["error"])
            # A client's automatic retry gets the same answer without a new build.
            again = inst.manifest("broken/app-a")
            self.assertEqual(again.body, r.body)
            self.assertEqual(len(inst.builds("broken/app-a")), 1)
            # Other images are unaffected.
            self.assertEqual(inst.manifest("app-a").status, 200)

    def test_timeout_says_so(self):
        with Instance(NIX_TIMEOUT=3) as inst:
            started = time.time()
            r = inst.manifest("sleepy")
            elapsed = time.time() - started
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out", "NIX_TIMEOUT (3 s)")
            self.assertLess(elapsed, 30)
            self.assertEqual(r.json()["errors"][0]["detail"]["timeout"], 3)

    @unittest.skipUnless(have("nix-daemon"), "nix-daemon is needed")
    def test_timeout_says_so_through_a_nix_daemon(self):
        # Where a daemon builds, nix-store exits with 1, not 101: Nix's words
        # tell the timeout.
        work = Path(tempfile.mkdtemp(prefix="nixery-daemon-"))
        self.addCleanup(shutil.rmtree, work, True)
        with NixDaemon(work) as daemon, \
                Instance(NIX_TIMEOUT=3, NIX_REMOTE=daemon.remote) as inst:
            r = inst.manifest("sleepy/app-a")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out",
                                           "NIX_TIMEOUT (3 s)")
            self.assertEqual(err["detail"]["limit"], "NIX_TIMEOUT")
            # A builder that only says such words failed; it did not time out.
            r = inst.manifest("timeouts.lookalike")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out after 30 seconds")
            self.assertNotIn("NIX_TIMEOUT", err["message"])
            self.assertNotIn("limit", err["detail"])

    def test_a_builder_saying_it_timed_out_has_failed(self):
        with Instance(NIX_TIMEOUT=30) as inst:
            r = inst.manifest("timeouts.lookalike")
            err = self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "timed out after 30 seconds")
            self.assertNotIn("NIX_TIMEOUT", err["message"])
            self.assertNotIn("limit", err["detail"])

    def test_arm64_is_built_for_aarch64(self):
        # This machine cannot build for aarch64-linux; Nix says so, and the
        # client sees Nix's words, as the server's failure (no builder for
        # that platform), not the image's. A package new in this run: one
        # built for aarch64 before (with extra-platforms) would be in the
        # store.
        with Instance(expected_errors=["no builder"]) as inst:
            r = inst.manifest("arm64/scratch")
            self.assertRegistryError(r, 503, "UNAVAILABLE", "no Nix builder", "aarch64-linux")


class CollectedDerivationsTest(TestCase):
    def test_a_garbage_collection_between_evaluation_and_build_is_survived(self):
        # The evaluation writes the image's derivations, which nothing roots
        # until the build does; a `nix-collect-garbage` meanwhile deletes
        # them. Here a nix-store first on PATH strikes as such a collection
        # would: before the first realise, it deletes the derivations asked
        # for (those built before, of the implicit packages, are alive and
        # stay), with the real nix-store.
        wrap = Path(tempfile.mkdtemp(prefix="nixery-gc-wrap-"))
        real = shutil.which("nix-store")
        script = wrap / "nix-store"
        script.write_text("""#!/bin/sh
if [ "$1" = --realise ] && mkdir %(wrap)s/struck 2>/dev/null; then
    for a in "$@"; do
        case "$a" in
            /nix/store/*.drv!*) %(real)s --delete "${a%%%%!*}" >/dev/null 2>&1 ;;
        esac
    done
fi
exec %(real)s "$@"
""" % {"wrap": wrap, "real": real})
        script.chmod(0o755)
        try:
            with Instance(salt=fresh_salt(), PATH="%s:%s" % (wrap, os.environ["PATH"])) as inst:
                r = inst.manifest("scratch")
                self.assertEqual(r.status, 200, r)
                self.assertTrue((wrap / "struck").is_dir(), "the collection did not strike")
                self.assertTrue(any(x.get("msg", "").startswith("derivations were collected")
                                    for x in inst.log_records()))
        finally:
            shutil.rmtree(wrap)
