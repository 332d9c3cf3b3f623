"""Package sources (issue: channels, git repositories, local paths) and the
caching rules for each: pinned references are never rebuilt, moving ones are
never served stale past NIXERY_SOURCE_TTL, and unchanged layers are reused."""

import functools
import http.server
import os
import random
import shutil
import tarfile
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, in_rootfs, make_package_set, run, skopeo_copy, unpack

GIT = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test", "-c", "init.defaultBranch=main"]


def git(repo, *args):
    return run(GIT + ["-C", str(repo)] + list(args)).stdout.decode().strip()


class Pulls:
    """Pulls with skopeo and reads what /bin/stamp prints in the rootfs."""

    def __init__(self, test, instance):
        self.instance = instance
        self.work = Path(tempfile.mkdtemp(prefix="nixery-src-"))
        test.addCleanup(shutil.rmtree, self.work, True)
        self.count = 0

    def stamp(self, tag):
        self.count += 1
        ref = "p%d" % self.count
        skopeo_copy(self.instance, "stamp", tag, self.work / "layout", ref)
        rootfs = unpack(self.work / "layout", ref, self.work / ref)
        return in_rootfs(rootfs, "/bin/stamp").strip()


@unittest.skipUnless(have("git") and have("skopeo") and have("umoci"), "git, skopeo and umoci are needed")
class GitSourceTest(TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-git-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.repo = make_package_set(self.dir)
        git(self.repo, "init", "-q")
        self.commits = {}
        for stamp in ("one", "two", "three"):
            (self.repo / "stamp.nix").write_text('"%s"\n' % stamp)
            git(self.repo, "add", "-A")
            git(self.repo, "commit", "-q", "-m", stamp)
            self.commits[stamp] = git(self.repo, "rev-parse", "HEAD")
        git(self.repo, "tag", "v1", self.commits["one"])
        git(self.repo, "tag", "-a", "-m", "release two", "v2", self.commits["two"])  # annotated
        git(self.repo, "branch", "release-v2", self.commits["two"])

    def test_tags_are_git_refs(self):
        # No window in which nginx answers a moved tag from its cache
        # (test_serving.py tests the window), and refs are not remembered
        # here: every pull reaches the pool, a moved tag is seen at once.
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo),
                      NIXERY_TAG_CACHE_SECONDS=0, NIXERY_GIT_REFS_TTL=0) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("v1"), "one")
            self.assertEqual(pulls.stamp("v2"), "two")
            self.assertEqual(pulls.stamp("release-v2"), "two")
            self.assertEqual(pulls.stamp("latest"), "three")
            builds = len(inst.builds())
            self.assertEqual(builds, 3, "release-v2 and v2 are one commit: one build")

            # A commit tag pins the content: served from the cache, Nix never runs.
            self.assertEqual(pulls.stamp(self.commits["one"]), "one")
            self.assertEqual(inst.manifest("stamp", self.commits["two"]).header("Docker-Content-Digest"),
                             inst.manifest("stamp", "v2").header("Docker-Content-Digest"))
            self.assertEqual(len(inst.builds()), builds)

            # Moving a tag is picked up at once, and the old commit's layers are reused.
            git(self.repo, "tag", "-f", "-a", "-m", "moved", "v2", self.commits["three"])
            self.assertEqual(pulls.stamp("v2"), "three")
            self.assertEqual(inst.manifest("stamp", "v2").header("Docker-Content-Digest"),
                             inst.manifest("stamp", "latest").header("Docker-Content-Digest"))
            self.assertEqual(len(inst.builds()), builds, "v2 now names the commit latest was built from")

            # A new commit on the default branch is a new image for :latest.
            (self.repo / "stamp.nix").write_text('"four"\n')
            git(self.repo, "commit", "-q", "-am", "four")
            self.assertEqual(pulls.stamp("latest"), "four")
            last = inst.builds()[-1]
            self.assertGreater(last["layers_reused"], 0)

    def test_the_sixteen_latest_exports_stay_rooted(self):
        # Each exported commit is a GC root; 16 stay. Sixteen older exports
        # made while the clock was an hour ahead (their roots' times in the
        # future) keep their places by time, but never push out the export
        # just made, which is kept by name.
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo),
                      NIXERY_TAG_CACHE_SECONDS=0) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("v1"), "one")
            [roots] = (inst.state / "git").glob("*.roots")
            first = roots / self.commits["one"]
            self.assertTrue(first.is_symlink())
            ahead = time.time() + 3600
            fakes = []
            for i in range(16):
                fake = roots / ("%040x" % (i + 1))
                fake.symlink_to(os.readlink(first))
                os.utime(fake, (ahead + i, ahead + i), follow_symlinks=False)
                fakes.append(fake)
            self.assertEqual(pulls.stamp("v2"), "two")
            kept = sorted(p.name for p in roots.iterdir())
            self.assertEqual(kept, sorted([self.commits["two"]] + [f.name for f in fakes[1:]]))
            self.assertTrue((roots / self.commits["two"]).resolve().is_dir())

    def test_a_wall_clock_stepped_back_does_not_freeze_the_refs(self):
        # The refs were listed while the clock was an hour ahead (their
        # file's time is in the future): not trusted, a moved branch is seen.
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo),
                      NIXERY_TAG_CACHE_SECONDS=0, NIXERY_GIT_REFS_TTL=2) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "three")
            [refs] = (inst.state / "git").glob("*.git.refs")
            ahead = time.time() + 3600
            os.utime(refs, (ahead, ahead))
            (self.repo / "stamp.nix").write_text('"four"\n')
            git(self.repo, "commit", "-q", "-am", "four")
            self.assertEqual(pulls.stamp("latest"), "four")

    def test_a_branch_pushed_while_its_build_waits_is_built_under_its_new_commit(self):
        # One build at a time: `slow` holds it while the pull of stamp:latest
        # (main at `old`) waits in the queue, and main moves meanwhile. The
        # job builds the new commit; the old commit's key must not name it.
        (self.repo / "salt.nix").write_text('"%016x"\n' % random.getrandbits(64))  # slow is slow
        git(self.repo, "commit", "-q", "-am", "salted")
        old = git(self.repo, "rev-parse", "HEAD")
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo), NIXERY_MAX_BUILDS=1,
                      NIXERY_TAG_CACHE_SECONDS=0, NIXERY_GIT_REFS_TTL=0) as inst:
            def until(metric):
                deadline = time.monotonic() + 60
                while inst.metric(metric) < 1:
                    self.assertLess(time.monotonic(), deadline, metric)
                    time.sleep(0.05)
            slow = threading.Thread(target=inst.manifest, args=("slow",))
            slow.start()
            until("nixery_builds_running")
            answers = []
            waiting = threading.Thread(target=lambda: answers.append(inst.manifest("stamp")))
            waiting.start()
            until("nixery_builds_queued")
            (self.repo / "stamp.nix").write_text('"four"\n')
            git(self.repo, "commit", "-q", "-am", "four")
            slow.join()
            waiting.join()
            # Each commit's image holds what that commit says, and the
            # waiting pull got the image of the commit the job built: what
            # main names now.
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp(old), "three")
            self.assertEqual(pulls.stamp("latest"), "four")
            self.assertEqual(answers[0].status, 200, answers[0])
            self.assertEqual(answers[0].body, inst.manifest("stamp").body)

    def test_a_lock_file_a_killed_git_left_does_not_fail_later_fetches(self):
        # git killed with its worker (SIGKILL) leaves shallow.lock; every
        # later one-commit fetch then failed and fell back to fetching every
        # branch and tag (all of nixpkgs' history; a commit no ref reaches
        # could not be fetched at all).
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo),
                      NIXERY_GIT_REFS_TTL=0) as inst:
            self.assertEqual(inst.manifest("stamp", self.commits["one"]).status, 200)
            mirrors = list((inst.state / "git").glob("*.git"))
            self.assertEqual(len(mirrors), 1)
            for name in ("shallow.lock", "packed-refs.lock"):
                (mirrors[0] / name).write_text("")
            (self.repo / "stamp.nix").write_text('"four"\n')
            git(self.repo, "commit", "-q", "-am", "four")
            self.assertEqual(Pulls(self, inst).stamp(git(self.repo, "rev-parse", "HEAD")), "four")
            log = inst.log_text()
            self.assertNotIn("fetching one commit failed", log)
            self.assertIn("removed a lock file a killed git left in the mirror", log)
            self.assertFalse((mirrors[0] / "shallow.lock").exists())

    def test_unknown_refs_and_commits(self):
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo)) as inst:
            r = inst.manifest("stamp", "no-such-branch")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", '"no-such-branch"', "<git repository>")
            # A repository on this server is not named by its path.
            self.assertNotIn(str(self.repo).encode(), r.body)
            self.assertNotIn(str(self.repo).encode(), inst.get("/").body)
            missing = "0123456789abcdef0123456789abcdef01234567"
            self.assertRegistryError(inst.manifest("stamp", missing), 404, "MANIFEST_UNKNOWN", missing)

    def test_nix_positions_name_the_package_set_not_its_store_path(self):
        # Nix names the file of an error by where the commit was exported:
        # the server's store path, as "<package set>" like a local one.
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(self.repo)) as inst:
            r = inst.manifest("evaluation.usesmissing")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", 'package "evaluation.usesmissing"',
                                     "nixeryTestNoSuchAttribute", "<package set>/default.nix:")
            self.assertNotIn(b"-source/default.nix", r.body)
            self.assertNotIn(b"-source/default.nix", inst.get("/").body)

    def test_unreachable_repository(self):
        gone = self.dir / "gone.git"
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=str(gone),
                      expected_errors=["package source unavailable"]) as inst:
            started = time.time()
            r = inst.manifest("stamp")
            self.assertRegistryError(r, 503, "UNAVAILABLE", "<git repository>")
            self.assertNotIn(str(gone).encode(), r.body)
            self.assertLess(time.time() - started, 30)

    def test_credentials_in_the_url_are_never_shown(self):
        # Nothing listens on port 1: git fails at once, and may quote the URL.
        url = "https://puller:s3cret-token@127.0.0.1:1/pkgs.git"
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_PKGS_REPO=url,
                      expected_errors=["package source unavailable"]) as inst:
            r = inst.manifest("stamp")
            self.assertRegistryError(r, 503, "UNAVAILABLE", "https://127.0.0.1:1/pkgs.git")
            page = inst.get("/")
            self.assertIn(b"the git repository https://127.0.0.1:1/pkgs.git", page.body)
            for text in (r.body, page.body, inst.log_text().encode()):
                self.assertNotIn(b"s3cret-token", text)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class RecordingHandler(QuietHandler):
    """Keeps (method, path) of every request in the server's `requests`."""

    def send_head(self):
        self.server.requests.append((self.command, self.path))
        return super().send_head()

    def do_HEAD(self):
        if getattr(self.server, "refuse_head", False):
            self.server.requests.append((self.command, self.path))
            self.send_error(405)
            return
        super().do_HEAD()


class ChannelServer:
    """Serves channel tarballs (NAME.tar.gz) from a directory over HTTP."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-channel-"))
        handler = functools.partial(RecordingHandler, directory=str(self.dir))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def publish(self, name, package_set, stamp):
        """A tarball with one top-level directory, like GitHub's archives."""
        (Path(package_set) / "stamp.nix").write_text('"%s"\n' % stamp)
        target = self.dir / (name + ".tar.gz")
        staging = target.with_suffix(".tmp")
        with tarfile.open(staging, "w:gz") as tar:
            tar.add(str(package_set), arcname="nixpkgs-" + stamp)
        os.replace(staging, target)
        # HTTP dates have one-second resolution: make the change visible.
        later = time.time() + 10 * len(stamp)
        os.utime(target, (later, later))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(have("skopeo") and have("umoci"), "skopeo and umoci are needed")
class ChannelSourceTest(TestCase):
    def setUp(self):
        self.channels = ChannelServer()
        self.addCleanup(self.channels.close)
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-chan-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pkgs = make_package_set(self.dir)

    def instance(self, channel="test-channel", **settings):
        """An instance on `channel`, published with the stamp "one"."""
        self.channels.publish(channel, self.pkgs, "one")
        return Instance(NIXERY_PKGS_PATH=None, NIXERY_CHANNEL=channel, NIXERY_CHANNEL_URL=self.channels.url,
                        **settings)

    def test_channel_from_an_offline_mirror(self):
        with self.instance(NIXERY_SOURCE_TTL=0) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "one")
            # A channel name moves: a new tarball is seen after the TTL (0 here).
            self.channels.publish("test-channel", self.pkgs, "two")
            self.assertEqual(pulls.stamp("latest"), "two")
            # Another image of the same channel is that image, not the one
            # evaluated before it from the same tarball.
            manifest = inst.manifest("app-a")
            self.assertEqual(manifest.status, 200)
            config = inst.get("/v2/app-a/blobs/%s" % manifest.json()["config"]["digest"]).json()
            layers = [h["created_by"] for h in config["history"]]
            self.assertIn("nixery: app-a", layers)
            self.assertFalse([h for h in layers if "stamp" in h], layers)

    def test_an_unchanged_channel_is_not_downloaded_again(self):
        with self.instance(NIXERY_SOURCE_TTL=1) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "one")
            downloads = lambda: self.channels.server.requests.count(("GET", "/test-channel.tar.gz"))
            self.assertEqual(downloads(), 1)
            # Past the TTL the channel is checked again; the tarball's date
            # and length say it has not moved: no download, and the same
            # store path is not evaluated again.
            time.sleep(1.5)
            self.assertEqual(pulls.stamp("latest"), "one")
            self.assertEqual(downloads(), 1)
            self.assertIn(("HEAD", "/test-channel.tar.gz"), self.channels.server.requests)
            self.assertTrue([r for r in inst.log_records() if r.get("msg") == "channel unchanged"])
            self.assertEqual(len(inst.builds()), 1)
            self.assertTrue(self.evaluations_reused(inst))
            # A moved channel is downloaded and evaluated again.
            self.channels.publish("test-channel", self.pkgs, "two")
            time.sleep(1.5)
            self.assertEqual(pulls.stamp("latest"), "two")
            self.assertEqual(downloads(), 2)
            self.assertEqual(len(inst.builds()), 2)

    @staticmethod
    def evaluations_reused(inst):
        return [r for r in inst.log_records()
                if r.get("msg") == "the source has not changed; its evaluation is reused"]

    def test_a_channel_whose_server_refuses_head_is_downloaded_each_time(self):
        self.channels.server.refuse_head = True
        with self.instance(NIXERY_SOURCE_TTL=1) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "one")
            time.sleep(1.5)
            self.assertEqual(pulls.stamp("latest"), "one")
            requests = self.channels.server.requests
            self.assertIn(("HEAD", "/test-channel.tar.gz"), requests)
            self.assertEqual(requests.count(("GET", "/test-channel.tar.gz")), 2)
            # The same tarball is the same store path: not evaluated again.
            self.assertEqual(len(inst.builds()), 1)
            self.assertTrue(self.evaluations_reused(inst))

    def test_a_wall_clock_stepped_back_does_not_freeze_the_channel(self):
        with self.instance(NIXERY_SOURCE_TTL=1) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "one")
            # Fetched while the clock was an hour ahead: the root's time is
            # in the future, and is not trusted for that hour.
            [root] = [p for p in (inst.state / "channels").iterdir() if p.is_symlink()]
            ahead = time.time() + 3600
            os.utime(root, (ahead, ahead), follow_symlinks=False)
            self.channels.publish("test-channel", self.pkgs, "two")
            time.sleep(1.5)
            self.assertEqual(pulls.stamp("latest"), "two")

    def test_a_channel_whose_host_fails_serves_its_last_fetch(self):
        with self.instance(NIXERY_SOURCE_TTL=1) as inst:
            pulls = Pulls(self, inst)
            self.assertEqual(pulls.stamp("latest"), "one")
            (self.channels.dir / "test-channel.tar.gz").unlink()  # the host answers 404 from now on
            time.sleep(1.5)  # past the TTL: the image is evaluated again, the channel fetched again
            self.assertEqual(pulls.stamp("latest"), "one")
            self.assertEqual(inst.manifest("hello").status, 200)  # a new image too
            fallbacks = [r for r in inst.log_records()
                         if r.get("msg") == "fetching the channel failed; using its last fetch"]
            self.assertTrue(fallbacks)

    def test_channel_within_its_ttl_is_not_evaluated_again(self):
        with self.instance() as inst:
            first = inst.manifest("stamp")
            self.channels.publish("test-channel", self.pkgs, "two")
            second = inst.manifest("stamp")
            self.assertEqual(first.header("Docker-Content-Digest"), second.header("Docker-Content-Digest"))
            self.assertEqual(len(inst.builds()), 1)

    def test_commit_channel_is_pinned(self):
        with self.instance("0123456789abcdef0123456789abcdef01234567", NIXERY_SOURCE_TTL=0) as inst:
            self.assertEqual(inst.manifest("stamp").status, 200)
            self.assertEqual(inst.manifest("stamp").status, 200)
            self.assertEqual(len(inst.builds()), 1, "a pinned channel is never evaluated again")

    def test_nix_positions_name_the_package_set_not_its_store_path(self):
        with self.instance() as inst:
            r = inst.manifest("evaluation.usesmissing")
            self.assertRegistryError(r, 404, "MANIFEST_UNKNOWN", 'package "evaluation.usesmissing"',
                                     "<package set>/default.nix:")
            self.assertNotIn(b"-source/default.nix", r.body)

    def test_unreachable_channel(self):
        closed = "http://127.0.0.1:1"
        with Instance(NIXERY_PKGS_PATH=None, NIXERY_CHANNEL="nixos-test", NIXERY_CHANNEL_URL=closed,
                      expected_errors=["package source unavailable"]) as inst:
            self.assertRegistryError(inst.manifest("hello"), 503, "UNAVAILABLE", "nixos-test", closed)


class PathSourceTest(TestCase):
    def test_editing_a_package_changes_only_its_layers(self):
        with Instance(NIXERY_SOURCE_TTL=0) as inst:
            name = "app-a/stamp"
            before = inst.manifest(name).json()["layers"]
            # Evaluated again (TTL 0) with nothing changed: same image, nothing packed.
            self.assertEqual(inst.manifest(name).json()["layers"], before)
            self.assertEqual(inst.builds(name)[-1]["layers_built"], 0)

            (inst.package_set / "stamp.nix").write_text('"edited"\n')
            after = inst.manifest(name).json()["layers"]
            old = {l["digest"] for l in before}
            new = {l["digest"] for l in after}
            kept = old & new
            self.assertEqual(len(old - new), 2, "the stamp's layer and the top layer change")
            self.assertEqual(len(kept), len(before) - 2)
            packed = inst.packed_layers()
            for digest in kept:
                self.assertEqual(packed.count(digest), 1, "an unchanged layer was packed again")
            last = inst.builds(name)[-1]
            self.assertEqual((last["layers_built"], last["layers_reused"]), (2, len(kept)))

    def test_an_evaluation_from_before_the_wall_clock_stepped_back_expires(self):
        with Instance(NIXERY_SOURCE_TTL=2, NIXERY_TAG_CACHE_SECONDS=0) as inst:
            first = inst.manifest("stamp").header("Docker-Content-Digest")
            with inst.db() as conn:  # evaluated while the clock was an hour ahead
                conn.execute("UPDATE evaluations SET evaluated_at = evaluated_at + 3600")
            (inst.package_set / "stamp.nix").write_text('"edited"\n')
            time.sleep(2.5)
            self.assertNotEqual(inst.manifest("stamp").header("Docker-Content-Digest"), first)

    def test_changes_wait_for_the_ttl(self):
        with Instance(NIXERY_SOURCE_TTL=3) as inst:
            first = inst.manifest("stamp").header("Docker-Content-Digest")
            (inst.package_set / "stamp.nix").write_text('"edited"\n')
            self.assertEqual(inst.manifest("stamp").header("Docker-Content-Digest"), first)
            time.sleep(3.5)
            self.assertNotEqual(inst.manifest("stamp").header("Docker-Content-Digest"), first)
