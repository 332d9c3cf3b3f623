"""Builds that fail: Nix's message reaches the client, failures are
remembered briefly, timeouts say so."""

import time

from harness import Instance, TestCase


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

    def test_arm64_is_built_for_aarch64(self):
        # This machine cannot build for aarch64-linux; Nix says so, and the
        # client sees Nix's words.
        with Instance() as inst:
            r = inst.manifest("arm64/hello")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", "aarch64-linux")
