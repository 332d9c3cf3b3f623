"""Real clients against a build that outlasts NIXERY_HEADER_DEADLINE: Docker
(dockerd on its own containerd) and containerd's ctr pull and run an image
whose manifest came with early headers and a body that followed."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from harness import Instance, TestCase, have, keep_dirs, run
from test_slow_builds import fresh_salt


def wait_for_socket(path, process, timeout, log):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError("%s exited:\n%s" % (process.args[0], Path(log).read_text(errors="replace")[-3000:]))
        if os.path.exists(path):
            return
        time.sleep(0.1)
    raise AssertionError("%s did not open %s:\n%s" % (process.args[0], path,
                                                     Path(log).read_text(errors="replace")[-3000:]))


def stop(process, timeout=30):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@unittest.skipUnless(all(have(p) for p in ("containerd", "ctr", "dockerd", "docker", "runc")),
                     "needs containerd, ctr, dockerd, docker and runc")
class DaemonsCase(TestCase):
    """A containerd and a dockerd of the test's own (by PID, on sockets in a
    temporary directory) for the tests of a class; docker() and ctr() drive
    them. No tests of its own: test_build_command.py and test_platforms.py
    use it too."""

    @classmethod
    def setUpClass(cls):
        # Short paths: unix socket paths are limited to 108 bytes.
        cls.dir = Path(tempfile.mkdtemp(prefix="nx-ctr-"))
        cls.containerd_socket = str(cls.dir / "containerd.sock")
        cls.containerd_log = cls.dir / "containerd.log"
        config = cls.dir / "containerd.toml"
        config.write_text('version = 2\nroot = "%s"\nstate = "%s"\n' % (cls.dir / "c-root", cls.dir / "c-state"))
        with open(cls.containerd_log, "ab") as log:
            cls.containerd = subprocess.Popen(
                ["containerd", "--config", str(config), "--address", cls.containerd_socket],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        cls.docker_socket = str(cls.dir / "docker.sock")
        cls.dockerd_log = cls.dir / "dockerd.log"
        cls.dockerd = None
        try:
            wait_for_socket(cls.containerd_socket, cls.containerd, 30, cls.containerd_log)
            with open(cls.dockerd_log, "ab") as log:
                cls.dockerd = subprocess.Popen(
                    ["dockerd", "--data-root", str(cls.dir / "d-root"), "--exec-root", str(cls.dir / "d-exec"),
                     "--pidfile", str(cls.dir / "dockerd.pid"), "-H", "unix://" + cls.docker_socket,
                     "--containerd", cls.containerd_socket, "--storage-driver", "vfs", "--iptables=false",
                     "--ip6tables=false", "--bridge=none"],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            wait_for_socket(cls.docker_socket, cls.dockerd, 60, cls.dockerd_log)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.dockerd is not None:
            stop(cls.dockerd)
        stop(cls.containerd)
        if not keep_dirs():
            # vfs layers and containerd's snapshots are plain files
            shutil.rmtree(cls.dir, ignore_errors=True)

    def docker(self, *args, timeout=300):
        return run(["docker", "-H", "unix://" + self.docker_socket] + list(args), timeout=timeout)

    def ctr(self, *args, timeout=300):
        return run(["ctr", "--address", self.containerd_socket, "--namespace", "nixery-test"] + list(args),
                   timeout=timeout)


class RealClientsTest(DaemonsCase):
    def test_docker_and_ctr_pull_and_run_an_image_built_after_the_deadline(self):
        with Instance(salt=fresh_salt(), NIXERY_HEADER_DEADLINE=2) as inst:
            host = "127.0.0.1:%d" % inst.port

            docker_image = "%s/pause.s6.v1:latest" % host
            self.docker("pull", docker_image)
            out = self.docker("run", "--rm", "--network=none", docker_image, "pause").stdout.decode()
            self.assertIn("paused 6", out)
            self.docker("rmi", docker_image)

            ctr_image = "%s/pause.s6.v2:latest" % host
            self.ctr("images", "pull", "--plain-http", ctr_image)
            out = self.ctr("run", "--rm", "--snapshotter", "native", ctr_image, "nixery-pause", "pause").stdout.decode()
            self.assertIn("paused 6", out)
            self.ctr("images", "rm", ctr_image)

            # Both manifests came with early headers: the builds outlasted the deadline.
            early = [r for r in inst.log_records() if r.get("msg") == "request" and r.get("early_headers")]
            self.assertTrue(any(r.get("image") == "pause.s6.v1" for r in early), early)
            self.assertTrue(any(r.get("image") == "pause.s6.v2" for r in early), early)
