"""`nixery gc` against running instances: what no recently used image
references goes, what one does stays and still pulls; a collection that
runs while a build reuses old layers and records its image does not break
that build; a dry run changes nothing; and with two instances sharing one
STORAGE_PATH, gc on one keeps what the other pulled (by tag or by digest)
although its own database says nobody used it.

gc never deletes objects younger than an hour (another instance's build in
flight), so the tests age the files in storage as well as the rows."""

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import (NIXERY, Instance, TestCase, base_environment, have, in_rootfs, run, skopeo_copy,
                     unpack)


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


def age_storage(storage, hours=2):
    """Pretends every object in `storage` was written `hours` ago."""
    old = time.time() - hours * 3600
    for path in Path(storage).rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


def last_used(instance, name):
    with instance.db() as conn:
        return conn.execute(
            "SELECT i.last_used_at FROM images i JOIN evaluations e ON e.closure_key = i.closure_key "
            "JOIN builds b ON b.image_key = e.image_key WHERE b.image = ?1", (name,)).fetchone()[0]


def database_dump(path):
    """The SQL text of a database, read through SQLite: reading the file
    directly would close a descriptor of it in this process, dropping the
    locks of any connection the process has open."""
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def snapshot(*roots):
    """Every file under `roots` with its mode, size and modification time,
    and the content of SQLite databases (whose -wal and -shm files a reader
    may create; they do not change the data)."""
    out = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.name.endswith(("-wal", "-shm", ".log")):
                continue
            # nginx's own cache and temporary files change under its hands
            # (a cache entry is written to a temporary name, then renamed).
            if {"nginx-cache", "nginx-tmp"} & set(path.relative_to(root).parts):
                continue
            st = path.lstat()
            out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                              database_dump(path) if path.suffix == ".sqlite" else None)
    return out


def gc_lock_held(instance):
    """Whether some process holds gc's lock (builder.hpp, k_gc_lock): an OFD
    lock on one byte of locks/builds.lock, at an offset taken from the
    SHA-256 of its name (util/lock.cpp)."""
    offset = int.from_bytes(hashlib.sha256(b"gc").digest()[:8], "big") & ((1 << 62) - 1)
    flock = "hh4xqqi4x"  # struct flock on 64-bit Linux
    try:
        with open(instance.state / "locks/builds.lock", "rb") as f:
            result = fcntl.fcntl(f, fcntl.F_OFD_GETLK,
                                 struct.pack(flock, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
    except FileNotFoundError:
        return False
    return struct.unpack(flock, result)[0] != fcntl.F_UNLCK


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
            age_storage(inst.storage)
            for name in keep:  # a fresh pull of the ones to keep
                self.assertEqual(inst.manifest(name).status, 200)
            staging = inst.storage / "staging"
            stale, fresh = staging / "0123456789abcdef.tmp", staging / "fedcba9876543210.tmp"
            stale.write_bytes(b"x" * 1000)
            fresh.write_bytes(b"y" * 10)
            old = time.time() - 2 * 3600
            os.utime(stale, (old, old))
            # And those of small files the state directory gets atomically,
            # left by a process killed between the write and the rename.
            for d in ("channels", "git"):
                (inst.state / d).mkdir(exist_ok=True)
            state_stale = [inst.state / "0123456789abcdef.tmp",
                           inst.state / "channels" / "0123456789abcdef.tmp",
                           inst.state / "git" / "0123456789abcdef.tmp"]
            state_kept = [inst.state / "fedcba9876543210.tmp",  # still being written
                          inst.state / "notes.tmp"]            # not a staging file
            for f in state_stale + state_kept:
                f.write_bytes(b"z")
            for f in state_stale + state_kept[1:]:
                os.utime(f, (old, old))
            before = self.stored(inst)

            files = snapshot(inst.storage, inst.state)
            dry = gc(inst, "--dry-run", "--keep-days", "0").stdout.decode()
            self.assertEqual(snapshot(inst.storage, inst.state), files, "a dry run wrote")
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
            for f in state_stale:
                self.assertFalse(f.exists(), f)
            for f in state_kept:
                self.assertTrue(f.exists(), f)
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

    def test_gc_keeps_the_zstd_layers_of_a_kept_image(self):
        # With zstd, an image's OCI manifest names blobs of its own (zstd
        # layers, their config) beside the gzip ones of its Docker manifest.
        oci = "application/vnd.oci.image.manifest.v1+json"
        with Instance(NIXERY_LAYER_COMPRESSION="zstd") as inst:
            keep_docker, keep_oci = inst.manifest("app-b"), inst.manifest("app-b", accept=oci)
            drop_oci = inst.manifest("app-a", accept=oci)
            for r in (keep_docker, keep_oci, drop_oci):
                self.assertEqual(r.status, 200, r)
            zstd_layers = {l["digest"] for l in keep_oci.json()["layers"]
                           if l["mediaType"].endswith("+zstd")}
            self.assertTrue(zstd_layers)
            self.assertEqual(zstd_layers & manifest_digests(keep_docker), set())
            self.assertTrue(manifest_digests(keep_oci) <= image_blobs(inst, "app-b"))
            age_image(inst, "app-a")
            age_storage(inst.storage)
            self.assertEqual(inst.manifest("app-b", accept=oci).status, 200)  # a fresh use
            only_dropped = image_blobs(inst, "app-a") - image_blobs(inst, "app-b")
            self.assertTrue(only_dropped)

            out = gc(inst, "--keep-days", "0").stdout.decode()
            self.assertIn("deleted 1 image,", out)
            stored = self.stored(inst)
            self.assertTrue(manifest_digests(keep_oci) | manifest_digests(keep_docker) <= stored)
            self.assertEqual(stored & only_dropped, set())
            # The kept image pulls whole in both formats.
            for digest in manifest_digests(keep_oci) | manifest_digests(keep_docker):
                b = inst.get("/v2/app-b/blobs/" + digest)
                self.assertEqual(b.status, 200, digest)
                self.assertEqual("sha256:" + hashlib.sha256(b.body).hexdigest(), digest)

    def test_gc_during_a_build_that_reuses_old_layers(self):
        with Instance(NIXERY_WORKERS=2) as inst:
            # app-a's layers (busybox, libgreet) are old and referenced by no
            # recent image; big/slow/app-b will reuse them.
            self.assertEqual(inst.manifest("app-a").status, 200)
            app_a = image_blobs(inst, "app-a")
            age_image(inst, "app-a")
            age_storage(inst.storage)
            result = {}
            build = threading.Thread(target=lambda: result.update(r=inst.manifest("big/slow/app-b")))
            build.start()
            # Once Nix is done (its result is in the build's GC root
            # directory) and the build holds gc's lock again, it looks its
            # layers up (finding app-a's), packs big's 48 MiB and records its
            # image. gc runs over and over meanwhile: it plans to delete
            # app-a's layers, waits for the build's lock, and then finds them
            # referenced by the new image.
            deadline = time.time() + 300
            while build.is_alive() and not (list((inst.state / "gcroots").glob("*/result"))
                                             and gc_lock_held(inst)):
                self.assertLess(time.time(), deadline, "the build did not get past Nix")
                time.sleep(0.01)
            runs, waited = 0, 0
            while build.is_alive() or runs == 0:
                r = run([str(NIXERY), "gc", "--keep-days", "0"], env=inst.env)
                runs += 1
                waited += b"waiting for builds" in r.stderr
            build.join()
            b = inst.builds("big/slow/app-b")[0]
            print("\n%d gc runs while the build packed, %d waited for it to record its image; "
                  "it reused %d layers" % (runs, waited, b["layers_reused"]))
            r = result["r"]
            self.assertEqual(r.status, 200, r)
            stored = self.stored(inst)
            missing = manifest_digests(r) - stored
            self.assertEqual(missing, set(), "the build's image names deleted blobs")
            self.assertIn(r.header("Docker-Content-Digest"), stored)
            self.assertTrue(manifest_digests(r) & app_a, "no layer of app-a's was in question")
            self.assertGreater(b["layers_reused"], 0)

            work = Path(tempfile.mkdtemp(prefix="gc-", dir=inst.dir))
            skopeo_copy(inst, "big/slow/app-b", "latest", work / "layout", "b")
            rootfs = unpack(work / "layout", "b", work / "b")
            self.assertEqual(in_rootfs(rootfs, "/bin/slow"), "slow\n")
            self.assertEqual(len(inst.builds("big/slow/app-b")), 1)
            # At least one collection overlapped the build's packing.
            self.assertGreater(waited, 0)

    def test_dry_run_of_an_instance_that_never_ran(self):
        d = Path(tempfile.mkdtemp(prefix="nixery-gc-"))
        try:
            env = dict(base_environment(), NIXERY_STATE_DIR=str(d / "state"),
                       STORAGE_PATH=str(d / "storage"))
            r = run([str(NIXERY), "gc", "--dry-run"], env=env, check=False)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(b"to read failed", r.stderr)
            self.assertEqual(list(d.iterdir()), [], "a dry run created files")
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_an_image_whose_documents_another_instance_collected_is_built_again(self):
        # Another instance's gc may take the config and manifests of an
        # image this one rebuilt meanwhile (a rebuild does not upload them
        # again when they are stored): the daily check of what an image
        # needs from the storage finds them gone, and the pull builds it.
        with Instance(NIXERY_TAG_CACHE_SECONDS=0) as inst:
            first = inst.manifest("app-a")
            self.assertEqual(first.status, 200, first)
            config = first.json()["config"]["digest"]
            stored = [p for p in inst.storage.rglob(config[7:]) if p.is_file()]
            self.assertEqual(len(stored), 1, stored)
            stored[0].unlink()
            with inst.db() as conn:
                conn.execute("DELETE FROM shared_uses")  # the day is over
            again = inst.manifest("app-a")
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.json()["config"]["digest"], config)
            self.assertTrue(stored[0].is_file())
            self.assertEqual(len(inst.builds("app-a")), 2)

    def test_an_image_whose_layer_another_instance_collected_is_built_again(self):
        # The same for a layer (gc on another instance racing a rebuild
        # that reused it): every pull would fail on it for good; the daily
        # check finds it gone and the pull packs it again.
        with Instance(NIXERY_TAG_CACHE_SECONDS=0) as inst:
            first = inst.manifest("app-a")
            self.assertEqual(first.status, 200, first)
            layer = first.json()["layers"][0]["digest"]
            [stored] = [p for p in inst.storage.rglob(layer[7:]) if p.is_file()]
            stored.unlink()
            with inst.db() as conn:
                conn.execute("DELETE FROM shared_uses")  # the day is over
            again = inst.manifest("app-a")
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.json()["layers"][0]["digest"], layer)
            self.assertEqual(len(inst.builds("app-a")), 2)
            blob = inst.get("/v2/app-a/blobs/" + layer)
            self.assertEqual(blob.status, 200)
            self.assertEqual("sha256:" + hashlib.sha256(blob.body).hexdigest(), layer)

    def test_a_pull_by_digest_does_not_put_off_the_daily_check(self):
        # containerd resolves a tag and then GETs the manifest by digest;
        # with a manifest list every client GETs the platform's manifest by
        # digest. Such a pull reaching the pool first on a new day (its
        # marker due) must not count as that day's check of the image.
        with Instance(NIXERY_TAG_CACHE_SECONDS=0) as inst:
            first = inst.manifest("app-a")
            self.assertEqual(first.status, 200, first)
            digest = first.header("Docker-Content-Digest")
            layer = first.json()["layers"][0]["digest"]
            [stored] = [p for p in inst.storage.rglob(layer[7:]) if p.is_file()]
            stored.unlink()
            with inst.db() as conn:
                conn.execute("DELETE FROM shared_uses")  # the day is over
            by_digest = inst.get("/v2/app-a/manifests/" + digest)
            self.assertEqual(by_digest.status, 200, by_digest)
            again = inst.manifest("app-a")
            self.assertEqual(again.status, 200, again)
            self.assertEqual(len(inst.builds("app-a")), 2, "the missing layer was not noticed")
            blob = inst.get("/v2/app-a/blobs/" + layer)
            self.assertEqual(blob.status, 200)

    def test_gc_keeps_every_blob_while_a_shared_record_cannot_be_read(self):
        """B built app-a; its shared record is damaged. A's gc cannot tell
        what the image references, nor which markers are its uses: it must
        not delete B's blobs meanwhile. B's daily check reads the record,
        and building the image again writes it anew."""
        with Instance(NIXERY_TAG_CACHE_SECONDS=0) as a, \
                Instance(package_set=a.package_set, STORAGE_PATH=a.storage,
                         NIXERY_TAG_CACHE_SECONDS=0) as b:
            b.storage = a.storage
            first = b.manifest("app-a")
            self.assertEqual(first.status, 200, first)
            self.assertEqual(b.manifest("app-a").status, 200)  # its first check, marker
            [record] = list((a.storage / "cache/images").iterdir())
            good = record.read_text()
            record.write_text(good[:len(good) // 2])
            age_storage(a.storage, hours=2)
            out = gc(a).stdout.decode()
            print("\n" + out.splitlines()[-1])
            self.assertIn("cannot be read", out)
            self.assertIn(" 0 blobs", out)
            self.assertTrue(list((a.storage / "cache/used").iterdir()), "B's marker was deleted")
            missing = {d for d in manifest_digests(first)
                       if b.get("/v2/app-a/blobs/" + d).status != 200}
            self.assertEqual(missing, set(), "gc deleted blobs of an image B serves")
            with b.db() as conn:
                conn.execute("DELETE FROM shared_uses")  # the day is over
            again = b.manifest("app-a")
            self.assertEqual(again.status, 200, again)
            self.assertEqual(len(b.builds("app-a")), 2)
            self.assertEqual(b.builds("app-a")[-1]["layers_built"], 0)
            self.assertEqual(json.loads(record.read_text()), json.loads(good))

    def test_an_image_another_instance_uses_while_gc_deletes_it(self):
        """A's gc lists the use markers, then waits for a build of A's to
        let go of its lock; meanwhile B uses app-c (its first use there: it
        writes its marker). gc must not then delete app-c, or B answers a
        manifest whose blobs are gone (it checks the storage once a day)."""
        with Instance(NIXERY_TAG_CACHE_SECONDS=0) as a, \
                Instance(package_set=a.package_set, STORAGE_PATH=a.storage,
                         NIXERY_TAG_CACHE_SECONDS=0) as b:
            b.storage = a.storage
            self.assertEqual(a.manifest("app-c").status, 200)
            age_image(a, "app-c")
            age_storage(a.storage, hours=40 * 24)
            # A build of A's holds gc's lock (shared), as from its first
            # layer lookup until its image is recorded.
            offset = int.from_bytes(hashlib.sha256(b"gc").digest()[:8], "big") & ((1 << 62) - 1)
            flock = "hh4xqqi4x"
            lock = open(a.state / "locks/builds.lock", "rb")
            fcntl.fcntl(lock, fcntl.F_OFD_SETLK,
                        struct.pack(flock, fcntl.F_RDLCK, os.SEEK_SET, offset, 1, 0))
            collector = subprocess.Popen([str(NIXERY), "gc", "--keep-days", "1"], env=a.env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for line in collector.stderr:
                if b"waiting for builds" in line:
                    break
            self.assertEqual(b.manifest("app-c").status, 200)  # B's use, and its marker
            self.assertTrue(list((a.storage / "cache/used").iterdir()))
            lock.close()
            out, _ = collector.communicate(timeout=300)
            print("\n" + out.decode().strip())
            again = b.manifest("app-c")
            self.assertEqual(again.status, 200, again)
            missing = {d for d in manifest_digests(again)
                       if b.get("/v2/app-c/blobs/" + d).status != 200}
            self.assertEqual(missing, set(), "B serves a manifest whose blobs gc deleted")

    def test_instances_sharing_storage(self):
        """B pulls one image by tag and another by digest; A's gc must keep
        both, although A's database says nobody used them for 40 days, and
        delete the one nobody used."""
        with Instance() as a, Instance(package_set=a.package_set, STORAGE_PATH=a.storage) as b:
            b.storage = a.storage
            names = ("app-a", "hardlinks", "app-c")
            responses = {n: a.manifest(n) for n in names}
            for r in responses.values():
                self.assertEqual(r.status, 200, r)
            blobs = {n: image_blobs(a, n) for n in names}
            only_unused = blobs["app-c"] - blobs["app-a"] - blobs["hardlinks"]
            self.assertTrue(only_unused)
            for n in names:
                age_image(a, n)
            age_storage(a.storage, hours=40 * 24)

            # B has never seen either image: it finds app-a's record (and
            # packs nothing), and serves hardlinks' manifest by digest.
            self.assertEqual(b.manifest("app-a").status, 200)
            self.assertEqual(b.builds("app-a")[-1]["layers_built"], 0)
            digest = responses["hardlinks"].header("Docker-Content-Digest")
            by_digest = b.get("/v2/hardlinks/manifests/" + digest)
            self.assertEqual(by_digest.status, 200, by_digest)
            markers = {p.name for p in (a.storage / "cache/used").iterdir()}
            self.assertIn(digest[7:], markers)
            self.assertIn(responses["app-a"].header("Docker-Content-Digest")[7:], markers)

            out = gc(a, "--keep-days", "0").stdout.decode()
            print("\n" + out.splitlines()[-1])
            self.assertIn("deleted 1 image,", out)
            stored = self.stored(a)
            self.assertTrue(blobs["app-a"] | blobs["hardlinks"] <= stored)
            self.assertEqual(stored & only_unused, set())
            self.assertEqual(len(list((a.storage / "cache/images").iterdir())), 2)
            self.assertLess(last_used(a, "hardlinks"), time.time() - 30 * 86400)

            # A pull by digest counts as a use here too.
            self.assertEqual(a.get("/v2/hardlinks/manifests/" + digest).status, 200)
            self.assertGreater(last_used(a, "hardlinks"), time.time() - 120)

            # Both still pull completely, from either instance; the image
            # nobody used is built again.
            work = Path(tempfile.mkdtemp(prefix="gc-", dir=a.dir))
            for inst, name in ((a, "app-a"), (b, "app-a"), (a, "hardlinks"), (b, "hardlinks")):
                skopeo_copy(inst, name, "latest", work / "layout", name)
            rootfs = unpack(work / "layout", "app-a", work / "app-a")
            self.assertEqual(in_rootfs(rootfs, "/bin/app-a"), "app-a uses greetings from libgreet\n")
            skopeo_copy(b, "app-c", "latest", work / "layout", "app-c")
            self.assertEqual(b.builds("app-c")[0]["layers_built"], 2)
