"""`nixery gc` against a running instance: what no recently used image
references goes, what one does stays and still pulls, and a collection
that runs while a build is packing and recording its image does not break
that build."""

import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import NIXERY, Instance, TestCase, have, in_rootfs, run, skopeo_copy, unpack


def manifest_digests(response):
    """Every blob a manifest response names: config and layers."""
    m = response.json()
    return {m["config"]["digest"]} | {l["digest"] for l in m["layers"]}


def gc(instance, *args):
    return run([str(NIXERY), "gc"] + list(args), env=instance.env)


def age_image(instance, name, days=40):
    """Pretends nobody pulled image `name` for `days` days."""
    with instance.db() as conn:
        n = conn.execute(
            "UPDATE images SET last_used_at = strftime('%s','now') - ?1 WHERE closure_key IN "
            "(SELECT e.closure_key FROM evaluations e JOIN builds b ON b.image_key = e.image_key "
            "WHERE b.image = ?2)", (days * 86400, name)).rowcount
    assert n == 1, (name, n)


def image_blobs(instance, name):
    """The digests the image record of `name` references (its layers, its
    config and both of its manifests)."""
    with instance.db() as conn:
        return {r[0] for r in conn.execute(
            "SELECT ib.digest FROM image_blobs ib JOIN evaluations e ON e.closure_key = ib.closure_key "
            "JOIN builds b ON b.image_key = e.image_key WHERE b.image = ?1", (name,))}


@unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
class GcTest(TestCase):
    def stored(self, inst):
        return {"sha256:" + p.name for p in inst.blob_files()}

    def test_gc_keeps_what_recent_images_reference(self):
        with Instance() as inst:
            keep = {name: inst.manifest(name) for name in ("app-b", "shell/hello")}
            drop = {name: inst.manifest(name) for name in ("app-a", "hardlinks")}
            for r in list(keep.values()) + list(drop.values()):
                self.assertEqual(r.status, 200, r)
            kept_blobs = set().union(*(image_blobs(inst, name) for name in keep))
            dropped_blobs = set().union(*(image_blobs(inst, name) for name in drop))
            for name, r in list(keep.items()) + list(drop.items()):
                self.assertTrue(manifest_digests(r) <= image_blobs(inst, name))
            only_dropped = dropped_blobs - kept_blobs
            # app-a and app-b share layers (libgreet, busybox): they must stay.
            self.assertTrue(dropped_blobs & kept_blobs)
            self.assertTrue(only_dropped)

            for name in drop:
                age_image(inst, name)
            for name in keep:  # a fresh pull of the ones to keep
                self.assertEqual(inst.manifest(name).status, 200)
            staging = inst.storage / "staging"
            stale, fresh = staging / "0123456789abcdef.tmp", staging / "fedcba9876543210.tmp"
            stale.write_bytes(b"x" * 1000)
            fresh.write_bytes(b"y" * 10)
            old = time.time() - 2 * 3600
            os.utime(stale, (old, old))
            before = self.stored(inst)

            dry = gc(inst, "--dry-run", "--keep-days", "0").stdout.decode()
            self.assertEqual(self.stored(inst), before, "a dry run deleted blobs")
            self.assertTrue(stale.exists())
            for digest in only_dropped:
                self.assertIn("would delete blob " + digest, dry)
            for digest in kept_blobs:
                self.assertNotIn(digest, dry)
            self.assertIn("would delete 2 images", dry)
            self.assertIn("1000 bytes", dry)

            out = gc(inst, "--keep-days", "0").stdout.decode()
            print("\n" + out.splitlines()[-1])
            self.assertIn("deleted 2 images", out)
            after = self.stored(inst)
            self.assertEqual(after & only_dropped, set(), "unreferenced blobs were kept")
            self.assertEqual(before - after, only_dropped)
            self.assertTrue(kept_blobs <= after)
            self.assertFalse(stale.exists())
            self.assertTrue(fresh.exists())
            with inst.db() as conn:
                known = {r[0] for r in conn.execute("SELECT digest FROM blobs UNION SELECT digest FROM layers")}
                self.assertEqual(known & only_dropped, set())
                self.assertEqual(conn.execute("SELECT count(*) FROM images").fetchone()[0], 2)
            records = [json.loads(p.read_text())["digest"] for p in (inst.storage / "cache/layers").iterdir()]
            self.assertEqual(set(records) & only_dropped, set())
            self.assertEqual(len(list((inst.storage / "cache/images").iterdir())), 2)

            # Every kept image still pulls, completely, and runs.
            work = Path(tempfile.mkdtemp(prefix="gc-", dir=inst.dir))
            skopeo_copy(inst, "shell/hello", "latest", work / "layout", "hello")
            rootfs = unpack(work / "layout", "hello", work / "hello")
            self.assertEqual(in_rootfs(rootfs, "/bin/hello"), "Hello, world!\n")
            skopeo_copy(inst, "app-b", "latest", work / "layout", "app-b")
            rootfs = unpack(work / "layout", "app-b", work / "app-b")
            self.assertEqual(in_rootfs(rootfs, "/bin/app-b"), "app-b uses greetings from libgreet\n")
            # A collected image is built again on its next pull.
            skopeo_copy(inst, "app-a", "latest", work / "layout", "app-a")
            self.assertEqual(len(inst.builds("app-a")), 2)

            again = gc(inst, "--keep-days", "0").stdout.decode()
            self.assertIn("deleted 0 images, 0 blobs", again)

    def test_gc_during_a_build_does_not_break_it(self):
        with Instance(NIXERY_WORKERS=2) as inst:
            # app-a's layers (busybox, libgreet…) are about to be collected
            # when the build of big/slow/app-b wants to reuse them.
            self.assertEqual(inst.manifest("app-a").status, 200)
            age_image(inst, "app-a")
            result = {}
            build = threading.Thread(target=lambda: result.update(r=inst.manifest("big/slow/app-b")))
            build.start()
            runs, waited = 0, 0
            while build.is_alive():
                r = run([str(NIXERY), "gc", "--keep-days", "0"], env=inst.env)
                runs += 1
                waited += b"waiting for builds" in r.stderr
            build.join()
            print("\n%d gc runs during the build, %d waited for it to record its image" % (runs, waited))
            self.assertGreater(runs, 1)
            r = result["r"]
            self.assertEqual(r.status, 200, r)
            stored = self.stored(inst)
            missing = manifest_digests(r) - stored
            self.assertEqual(missing, set(), "the build's image names deleted blobs")
            self.assertIn(r.header("Docker-Content-Digest"), stored)

            work = Path(tempfile.mkdtemp(prefix="gc-", dir=inst.dir))
            skopeo_copy(inst, "big/slow/app-b", "latest", work / "layout", "b")
            rootfs = unpack(work / "layout", "b", work / "b")
            self.assertEqual(in_rootfs(rootfs, "/bin/slow"), "slow\n")
            self.assertEqual(len(inst.builds("big/slow/app-b")), 1)
            # At least one collection overlapped the build's packing.
            self.assertGreater(waited, 0)
