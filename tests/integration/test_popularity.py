"""Popularity data: `nixery popcount` computes it for a package set, and
NIX_POPULARITY_URL feeds it to the layering of the service."""

import json
import subprocess
import tempfile
from pathlib import Path

from harness import NIXERY, Instance, TestCase, base_environment, make_package_set


class PopcountTest(TestCase):
    def test_counts_of_the_test_package_set(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = base_environment()
            env.update({"NIXERY_PKGS_PATH": str(make_package_set(tmp)), "NIX_TIMEOUT": "8"})
            output = Path(tmp) / "popularity.json"
            r = subprocess.run([str(NIXERY), "popcount", "--output", str(output)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr)
            counts = json.loads(output.read_text())
            # By hand from tests/pkgs: libgreet is used by app-a, app-b, app-c,
            # _7zip and helloWorld (xorg.xev is not top-level); the busybox
            # shell by those five plus stamp and slow; the busybox binary by
            # all of those through the shell, by the shell itself, and by the
            # demo's bash, moreutils, nano, hello and figlet scripts.
            self.assertEqual(counts, {"libgreet-1.0": 5, "busybox-static": 7, "busybox": 13})
            # broken and injects fail, sleepy outlives NIX_TIMEOUT: all skipped, said so.
            self.assertIn(b"3 failed to build", r.stderr)


class PopularityUrlTest(TestCase):
    def layer_paths(self, inst, name):
        """Store path names per layer, from the image's config history."""
        manifest = inst.manifest(name).json()
        config = inst.get("/v2/%s/blobs/%s" % (name, manifest["config"]["digest"])).json()
        return [h["created_by"] for h in config["history"]]

    def test_popular_paths_get_their_own_layer(self):
        with tempfile.TemporaryDirectory() as tmp:
            popularity = Path(tmp) / "popularity.json"
            popularity.write_text(json.dumps({"libgreet-1.0": 1000}))
            with Instance() as plain, Instance(NIX_POPULARITY_URL="file://" + str(popularity)) as popular:
                without = self.layer_paths(plain, "app-a")
                with_data = self.layer_paths(popular, "app-a")
                self.assertFalse(any(h == "nixery: libgreet-1.0" for h in without))
                self.assertIn("nixery: libgreet-1.0", with_data)

    def test_unreachable_popularity_data_stops_start_up(self):
        inst = Instance(NIX_POPULARITY_URL="file:///nonexistent/popularity.json")
        with self.assertRaises(AssertionError) as caught:
            inst.start(timeout=30)
        self.assertIn("/nonexistent/popularity.json", str(caught.exception))
        inst.stop()
