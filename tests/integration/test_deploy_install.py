"""`make install` / `make uninstall` into a DESTDIR, and the installed
systemd units: `systemd-analyze verify` and the exposure level that
`systemd-analyze security --offline=true` gives them (at most 2.0)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import TestCase, base_environment, have, keep_dirs, run
from deploy import NGINX, install, make, make_ca_and_certificate

EXPECTED_FILES = {
    "usr/bin/nixery",
    "usr/share/nixery/sql/001_initial.sql",
    "usr/share/nixery/sql/002_shared_use.sql",
    "usr/share/nixery/sql/003_failure_retry_after.sql",
    "usr/share/nixery/sql/004_store_paths.sql",
    "usr/share/nixery/sql/005_failure_kind.sql",
    "usr/share/nixery/sql/006_image_children.sql",
    "usr/share/nixery/nix/image.nix",
    "usr/share/nixery/nix/popcount.nix",
    "usr/share/nixery/nix/demo/default.nix",
    "usr/share/nixery/nginx/locations.conf.in",
    "usr/share/nixery/nginx/local.conf.in",
    "usr/share/nixery/nginx/nixery.conf.in",
    "usr/share/nixery/nginx/storage-location.conf.in",
    "usr/share/nixery/nginx/nixery.conf",
    "usr/share/nixery/nginx/nixery.conf.installed",
    "usr/share/nixery/nixery.env.example",
    "usr/lib/systemd/system/nixery.service",
    "usr/lib/systemd/system/nixery.socket",
    "usr/lib/systemd/system/nixery-gc.service",
    "usr/lib/systemd/system/nixery-gc.timer",
    "usr/lib/sysusers.d/nixery.conf",
    "etc/nginx/sites-available/nixery.conf",
}
UNITS = ("nixery.service", "nixery.socket", "nixery-gc.service", "nixery-gc.timer")
MAX_EXPOSURE = 2.0


def unit_environment(unit_text):
    """The variables a unit's Environment= lines set (ours need no quoting)."""
    env = {}
    for line in unit_text.splitlines():
        if line.startswith("Environment="):
            for assignment in line[len("Environment="):].split():
                name, _, value = assignment.partition("=")
                env[name] = value
    return env


def parse_settings(text):
    """The assignments of an EnvironmentFile= (no quoting either)."""
    return dict(line.split("=", 1) for line in text.splitlines()
                if line and not line.startswith("#"))


def files_under(root):
    return {str(p.relative_to(root)) for p in Path(root).rglob("*") if not p.is_dir()}


class InstallTest(TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-install-"))
        self.destdir = self.dir / "dest"

    def tearDown(self):
        if not getattr(self._outcome, "success", True) or keep_dirs():
            print("\n[kept %s]" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def test_install_and_uninstall(self):
        install(self.destdir)
        self.assertEqual(files_under(self.destdir), EXPECTED_FILES)
        nixery = self.destdir / "usr/bin/nixery"
        self.assertTrue(os.access(nixery, os.X_OK))
        service = (self.destdir / "usr/lib/systemd/system/nixery.service").read_text()
        self.assertIn("ExecStart=/usr/bin/nixery serve", service)
        self.assertNotIn("@BINDIR@", service)

        # The installed binary finds its data files next to it: it renders
        # the production configuration from the installed templates.
        env = base_environment()
        env.update({"NIXERY_STATE_DIR": str(self.dir / "state"), "STORAGE_PATH": str(self.dir / "s")})
        out = run([str(nixery), "nginx-config", "--server-name", "registry.example.com"], env=env)
        text = out.stdout.decode()
        self.assertIn("server_name registry.example.com;", text)
        self.assertIn("listen 443 ssl http2;", text)
        self.assertIn("location /_storage/", text)
        self.assertNotIn("@SOCKET@", text)
        self.assertNotIn("ssl_conf_command", text)  # nginx older than 1.21.4 refuses it
        modern = run([str(nixery), "nginx-config", "--http2-directive", "--ktls"],
                     env=env).stdout.decode()
        self.assertIn("listen 443 ssl;", modern)
        self.assertIn("http2 on;", modern)
        self.assertIn("ssl_conf_command Options KTLS;", modern)
        # An option value cannot smuggle in nginx syntax.
        bad = run([str(nixery), "nginx-config", "--certificate", "/x; include /etc/passwd"],
                  env=env, check=False)
        self.assertEqual(bad.returncode, 2, bad)

        # The site configuration belongs to the administrator once changed.
        site = self.destdir / "etc/nginx/sites-available/nixery.conf"
        self.assertEqual(site.read_text(),
                         (self.destdir / "usr/share/nixery/nginx/nixery.conf").read_text())
        # Enabled as README.md says (ln -s with an absolute target): the link
        # goes with the site, or nginx would not start again.
        enabled = self.destdir / "etc/nginx/sites-enabled"
        enabled.mkdir(parents=True)
        (enabled / "nixery.conf").symlink_to("/etc/nginx/sites-available/nixery.conf")
        (enabled / "other.conf").symlink_to("/etc/nginx/sites-available/other.conf")
        make("uninstall", "DESTDIR=%s" % self.destdir, "PREFIX=/usr")
        self.assertEqual(files_under(self.destdir), {"etc/nginx/sites-enabled/other.conf"})
        (enabled / "other.conf").unlink()

        install(self.destdir)
        (enabled / "nixery.conf").symlink_to("../sites-available/nixery.conf")
        make("uninstall", "DESTDIR=%s" % self.destdir, "PREFIX=/usr")
        self.assertEqual(files_under(self.destdir), set())

        # Installed with a site setting, upgraded without it: the site is
        # still the one installed, and goes. So does one replaced by the
        # latest rendering.
        for replace_site in (False, True):
            install(self.destdir, SITE_SERVER_NAME="registry.example.com")
            (enabled / "nixery.conf").symlink_to("/etc/nginx/sites-available/nixery.conf")
            install(self.destdir)
            self.assertIn("server_name registry.example.com;", site.read_text())
            if replace_site:
                shutil.copy(self.destdir / "usr/share/nixery/nginx/nixery.conf", site)
            make("uninstall", "DESTDIR=%s" % self.destdir, "PREFIX=/usr")
            self.assertEqual(files_under(self.destdir), set())

        install(self.destdir)
        (enabled / "nixery.conf").symlink_to("/etc/nginx/sites-available/nixery.conf")
        site.write_text(site.read_text() + "# changed by the administrator\n")
        install(self.destdir)
        self.assertIn("changed by the administrator", site.read_text())
        make("uninstall", "DESTDIR=%s" % self.destdir, "PREFIX=/usr")
        self.assertEqual(files_under(self.destdir), {"etc/nginx/sites-available/nixery.conf",
                                                     "etc/nginx/sites-enabled/nixery.conf"})

    @unittest.skipUnless(have("openssl"), "openssl is needed")
    def test_rendered_settings_pass_nginx_t(self):
        """Settings the README documents, rendered and checked by nginx
        itself: no manifest burst, no access log, paths with characters
        nginx cannot hold refused with the variable named."""
        install(self.destdir)
        nixery = self.destdir / "usr/bin/nixery"
        _, certificate, key = make_ca_and_certificate(self.dir / "tls")
        tmp = self.dir / "nginx-tmp"
        tmp.mkdir()

        def nginx_t(settings, *options):
            env = base_environment()
            env.update({"NIXERY_STATE_DIR": str(self.dir / "state"),
                        "STORAGE_PATH": str(self.dir / "s")})
            env.update(settings)
            out = run([str(nixery), "nginx-config", "--certificate", str(certificate),
                       "--certificate-key", str(key), "--cache-dir", str(self.dir / "cache"),
                       "--http-listen", "127.0.0.1:8080"] + list(options), env=env, check=False)
            if out.returncode != 0:
                return out.returncode, out.stderr.decode(), ""
            site = self.dir / "site.conf"
            site.write_bytes(out.stdout)
            conf = self.dir / "nginx.conf"
            conf.write_text("pid %(t)s/nginx.pid;\nevents {}\nhttp {\n"
                            "    access_log %(t)s/access.log;\n"
                            "    client_body_temp_path %(t)s/body;\n"
                            "    fastcgi_temp_path %(t)s/fastcgi;\n"
                            "    proxy_temp_path %(t)s/proxy;\n"
                            "    uwsgi_temp_path %(t)s/uwsgi;\n"
                            "    scgi_temp_path %(t)s/scgi;\n"
                            "    include %(site)s;\n}\n" % {"t": tmp, "site": site})
            checked = run([NGINX, "-t", "-p", str(tmp), "-e", str(tmp / "error.log"),
                           "-c", str(conf)], check=False)
            return checked.returncode, checked.stderr.decode(), out.stdout.decode()

        code, err, text = nginx_t({"NIXERY_MANIFEST_BURST": "0"})
        self.assertEqual(code, 0, err)
        self.assertIn("limit_req zone=nixery_manifests;", text)
        code, err, text = nginx_t({}, "--access-log", "off")
        self.assertEqual(code, 0, err)
        self.assertIn("access_log off;", text)
        code, err, text = nginx_t({}, "--listen", "127.0.0.1:8443")
        self.assertEqual(code, 0, err)
        self.assertIn("return 301 https://$host:8443$request_uri;", text)
        for name, value in (("STORAGE_PATH", "/srv/nixery blobs"), ("STORAGE_PATH", "/srv/$b"),
                            ("STORAGE_PATH", "/srv/nix;ery")):
            code, err, _ = nginx_t({name: value})
            self.assertEqual(code, 1, err)
            self.assertIn(name + "=", err)
            self.assertIn("nginx's configuration cannot hold", err)

    def test_settings_file(self):
        """The units' environment plus the example settings file installed
        as /etc/nixery/nixery.env is a valid configuration as it is (the
        filesystem backend) and edited as its comments say for S3."""
        install(self.destdir)
        units = self.destdir / "usr/lib/systemd/system"
        for unit in ("nixery.service", "nixery-gc.service"):
            text = (units / unit).read_text()
            self.assertIn("EnvironmentFile=/etc/nixery/nixery.env\n", text)
            self.assertNotIn("STORAGE_PATH", unit_environment(text))
        example = (self.destdir / "usr/share/nixery/nixery.env.example").read_text()
        s3 = example.replace("STORAGE_PATH=/var/lib/nixery/storage\n", "") \
            .replace("#NIXERY_STORAGE_BACKEND=s3", "NIXERY_STORAGE_BACKEND=s3") \
            .replace("#S3_BUCKET=nixery", "S3_BUCKET=nixery")
        nixery = self.destdir / "usr/bin/nixery"
        for settings, expected in ((example, "alias /var/lib/nixery/storage/;"),
                                   (s3, "blobs are served by redirects")):
            env = base_environment()
            env.update(unit_environment((units / "nixery.service").read_text()))
            env.update(parse_settings(settings))
            out = run([str(nixery), "nginx-config"], env=env, check=False)
            self.assertEqual(out.returncode, 0, out.stderr.decode())
            self.assertIn(expected, out.stdout.decode())

    @unittest.skipUnless(have("systemd-analyze"), "systemd-analyze is needed")
    def test_systemd_units(self):
        install(self.destdir)
        # systemd-analyze --root needs the machine's own units (targets and
        # the like) beside ours: a copy of the tree with them added.
        verify_root = self.dir / "verify-root"
        shutil.copytree(self.destdir, verify_root, symlinks=True)
        unit_dir = verify_root / "usr/lib/systemd/system"
        for system_dir in ("/usr/lib/systemd/system", "/lib/systemd/system"):
            if not os.path.isdir(system_dir):
                continue
            for entry in os.scandir(system_dir):
                if not (unit_dir / entry.name).exists() and not entry.is_dir():
                    shutil.copy(entry.path, unit_dir / entry.name, follow_symlinks=False)
        result = run(["systemd-analyze", "verify", "--root=%s" % verify_root] +
                     ["/usr/lib/systemd/system/%s" % u for u in UNITS], check=False)
        output = (result.stdout + result.stderr).decode()
        self.assertEqual(result.returncode, 0, output)
        self.assertEqual(output.strip(), "", "systemd-analyze verify complained:\n" + output)

        for unit in ("nixery.service", "nixery-gc.service"):
            result = run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                          str(self.destdir / "usr/lib/systemd/system" / unit)], check=False)
            output = (result.stdout + result.stderr).decode()
            m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(unit), output)
            self.assertIsNotNone(m, output)
            exposure = float(m.group(1))
            print("\n%s: systemd-analyze security exposure %.1f" % (unit, exposure))
            self.assertLessEqual(exposure, MAX_EXPOSURE, output)
            # libfcgi's select() needs descriptors below 1024; tasks are bounded.
            text = (self.destdir / "usr/lib/systemd/system" / unit).read_text()
            self.assertIn("\nLimitNOFILE=1024\n", text)
            self.assertRegex(text, r"\nTasksMax=\d+\n")
        gc_unit = (self.destdir / "usr/lib/systemd/system/nixery-gc.service").read_text()
        self.assertRegex(gc_unit, r"\nTimeoutStartSec=\w+\n")
