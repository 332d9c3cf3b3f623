"""The installed production nginx configuration in front of the installed
worker pool: `nginx -t`, a TLS pull with skopeo that trusts the test's CA
(over HTTP/2 where the client offers it), /metrics for localhost only,
HTTP basic auth as the README describes it for private instances, and,
run as root, the permission model of the units (deploy.py): the pool as an
unprivileged user under umask 0027, nginx as another user in its group."""

import http.client
import os
import pwd
import re
import stat
import ssl
import tempfile
import time
import unittest
from pathlib import Path

from harness import TestCase, have, in_rootfs, run, unpack
from deploy import NGINX_USER, POOL_USER, ProductionSite


def children(pid):
    """The processes whose parent is `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out

USER, PASSWORD = "puller", "s3cret-pass"


@unittest.skipUnless(have("skopeo") and have("umoci") and have("openssl") and have("curl"),
                     "skopeo, umoci, openssl and curl are needed")
class ProductionTlsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = ProductionSite()
        cls.failed = False
        try:
            cls.site.start()
        except BaseException:
            cls.site.stop()
            cls.site.cleanup(True)
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.site.stop()
        try:
            cls.site.check_logs()
            if code != 0:
                raise AssertionError("the worker pool exited with %r after SIGTERM" % code)
        except BaseException:
            cls.failed = True
            raise
        finally:
            cls.site.cleanup(cls.failed)

    def setUp(self):
        self.work = Path(tempfile.mkdtemp(prefix="pull-", dir=self.site.dir))

    def tearDown(self):
        if not getattr(self._outcome, "success", True):
            type(self).failed = True

    def https(self, path, headers=None, source="127.0.0.1"):
        context = ssl.create_default_context(cafile=str(self.site.ca_dir / "ca.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.site.https_port, context=context,
                                           timeout=300, source_address=(source, 0))
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def skopeo_pull(self, name, *extra):
        layout = self.work / "layout"
        return run(["skopeo", "copy", "--src-cert-dir", str(self.site.ca_dir)] + list(extra) +
                   ["docker://127.0.0.1:%d/%s:latest" % (self.site.https_port, name),
                    "oci:%s:%s" % (layout, name.replace("/", "_"))], check=False), layout

    def test_1_tls_pull_http2_and_metrics(self):
        self.assertEqual(self.site.nginx_test().returncode, 0)
        pulled, layout = self.skopeo_pull("shell/hello")
        self.assertEqual(pulled.returncode, 0, pulled.stderr.decode())
        rootfs = unpack(layout, "shell_hello", self.work / "bundle")
        self.assertEqual(in_rootfs(rootfs, "/bin/hello"), "Hello, world!\n")
        if self.site.socket_activated:
            self.assertIn('"socket":"systemd"', self.site.pool_log.read_text())

        # HTTP/2 over TLS, the registry's headers, blobs from nginx.
        out = run(["curl", "-sS", "--http2", "--cacert", str(self.site.ca_dir / "ca.crt"), "-D", "-",
                   "-o", "/dev/null", "https://127.0.0.1:%d/v2/" % self.site.https_port]).stdout.decode()
        self.assertTrue(out.startswith("HTTP/2 200"), out)
        self.assertIn("docker-distribution-api-version: registry/2.0", out.lower())
        # Its id, in nginx's access log (--access-log) as in the answer.
        rid = re.search(r"(?im)^x-request-id: ([0-9a-f]{32})\r?$", out).group(1)
        deadline = time.time() + 5
        while rid not in self.site.access_log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        line = [x for x in self.site.access_log.read_text().splitlines() if x.endswith(" " + rid)]
        self.assertEqual(len(line), 1, rid)
        self.assertIn('"GET /v2/ HTTP/2.0" 200', line[0])

        # Plain HTTP redirects to HTTPS, on the port it listens on.
        conn = http.client.HTTPConnection("127.0.0.1", self.site.http_port, timeout=30)
        conn.request("GET", "/v2/", headers={"Host": "localhost"})
        r = conn.getresponse()
        self.assertEqual(r.status, 301)
        self.assertEqual(r.getheader("Location"), "https://localhost:%d/v2/" % self.site.https_port)
        conn.close()

        # /metrics answers the machine itself only.
        status, headers, body = self.https("/metrics")
        self.assertEqual(status, 200, body)
        self.assertIn(b"nixery_builds_total 1", body)
        status, headers, body = self.https("/metrics", source="127.0.0.2")
        self.assertEqual(status, 403, body)
        self.assertEqual(headers.get("Content-Type"), "application/json")

        # The start page shows the host the client asked for.
        status, headers, body = self.https("/", headers={"Host": "registry.example.com"})
        self.assertEqual(status, 200)
        self.assertIn(b"docker pull registry.example.com/shell/hello", body)
        self.assertNotIn(b"tls-verify=false", body)

    def test_2_basic_auth(self):
        self.site.enable_basic_auth(USER, PASSWORD)
        self.assertEqual(self.site.nginx_test().returncode, 0)
        self.site.stop_nginx()
        self.site.start_nginx()

        status, headers, body = self.https("/v2/")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("WWW-Authenticate"), 'Basic realm="nixery"')
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertIn(b"UNAUTHORIZED", body)

        refused, _ = self.skopeo_pull("figlet")
        self.assertNotEqual(refused.returncode, 0)
        self.assertRegex(refused.stderr.decode().lower(), "401|unauthorized|authentication")

        pulled, layout = self.skopeo_pull("figlet", "--src-creds", "%s:%s" % (USER, PASSWORD))
        self.assertEqual(pulled.returncode, 0, pulled.stderr.decode())
        rootfs = unpack(layout, "figlet", self.work / "bundle")
        self.assertTrue((rootfs / "bin/figlet").exists())

        wrong, _ = self.skopeo_pull("figlet", "--src-creds", "%s:wrong" % USER)
        self.assertNotEqual(wrong.returncode, 0)
        # Still reachable without a password from the machine itself.
        status, _, _ = self.https("/metrics")
        self.assertEqual(status, 200)

    def test_3_permission_model(self):
        site = self.site
        if not site.unprivileged:
            self.skipTest("the permission model needs root and Debian's accounts (see deploy.py)")
        # Who runs: the pool's master and its workers, nginx's workers.
        def uid(pid):
            return os.stat("/proc/%d" % pid).st_uid
        pool = site.pool.pid
        workers = [p for p in children(pool)]
        self.assertTrue(workers)
        for pid in [pool] + workers:
            self.assertEqual(uid(pid), pwd.getpwnam(POOL_USER).pw_uid, pid)
        nginx_workers = children(site.nginx.pid)
        self.assertTrue(nginx_workers)
        for pid in nginx_workers:
            self.assertEqual(uid(pid), pwd.getpwnam(NGINX_USER).pw_uid, pid)

        # The pull of test_1 went through all of this; here is why it could.
        layers = site.storage / "layers"
        blobs = sorted(layers.iterdir())
        self.assertTrue(blobs)
        modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in
                 (site.state, site.storage, layers, blobs[0], site.socket,
                  site.state / "nixery.sqlite", site.state / "locks")}
        print("\n" + "\n".join("%04o %s" % (m, p.relative_to(site.dir)) for p, m in modes.items()))
        self.assertEqual(modes[site.state], 0o710)
        self.assertEqual(modes[layers], 0o750)  # made by the pool under umask 0027
        self.assertEqual(modes[blobs[0]], 0o644)
        self.assertEqual(modes[site.socket], 0o660)
        self.assertEqual(modes[site.state / "nixery.sqlite"], 0o600)
        self.assertEqual(modes[site.state / "locks"], 0o700)
        # nginx's user reads blobs, and nothing else of the pool's.
        self.assertTrue(site.can_read(NGINX_USER, blobs[0]))
        for private in (site.state, site.state / "nixery.sqlite", site.state / "locks/builds.lock"):
            self.assertFalse(site.can_read(NGINX_USER, private), private)
