"""podman pulls and runs an image (it sends one Accept line per media type,
which nginx passes as several FastCGI params)."""

import shutil
import tempfile
import unittest
from pathlib import Path

from harness import PODMAN_RUN, Instance, TestCase, have, podman_argv, run


@unittest.skipUnless(have("podman") and have("runc"), "podman and runc are needed")
class PodmanTest(TestCase):
    def test_pull_and_run(self):
        storage = Path(tempfile.mkdtemp(prefix="nixery-podman-"))
        self.addCleanup(shutil.rmtree, storage, True)
        podman = podman_argv(storage)
        with Instance() as inst:
            image = "127.0.0.1:%d/shell/hello" % inst.port
            run(podman + ["pull", "--tls-verify=false", image])
            out = run(podman + PODMAN_RUN + [image, "hello"]).stdout.decode()
            self.assertEqual(out, "Hello, world!\n")
            out = run(podman + PODMAN_RUN + [image, "bash", "-c", "echo $PATH; ls -d /tmp"]).stdout.decode()
            self.assertEqual(out.split(), ["/bin:/usr/bin:/sbin:/usr/sbin", "/tmp"])
            inspect = run(podman + ["image", "inspect", "--format", "{{.Architecture}} {{.Config.Cmd}}", image])
            self.assertEqual(inspect.stdout.decode().strip(), "amd64 [bash]")
