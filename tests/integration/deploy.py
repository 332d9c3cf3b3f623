"""Helpers of the deployment tests: `make install` into a DESTDIR, and a
production site made of what it installed: the installed `nixery serve`
(the worker pool nixery.service runs) behind a real nginx running the
installed production configuration, with TLS from a certificate authority
the test makes with the openssl CLI.

nginx runs with its own pid, temp and log paths (Debian's nginx has
compiled-in /var paths), listens on 127.0.0.1 only and is stopped by its
PID."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import ROOT, base_environment, free_port, keep_dirs, make_package_set, run

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def make(*args, timeout=600):
    """Runs make in the checkout, outside any make that runs the tests."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
           and not k.startswith("NIXERY_")}
    return run(["make", "-s", "-C", str(ROOT)] + list(args), timeout=timeout, env=env)


def install(destdir, prefix="/usr", **make_vars):
    make("install", "DESTDIR=%s" % destdir, "PREFIX=%s" % prefix,
         *["%s=%s" % (k, v) for k, v in make_vars.items()])
    return Path(destdir)


def make_ca_and_certificate(directory):
    """A CA and a certificate it signed for 127.0.0.1 and localhost.
    Returns (ca_dir, certificate, key); ca_dir holds ca.crt only, as
    skopeo's --src-cert-dir wants."""
    d = Path(directory)
    ca_dir = d / "ca"
    ca_dir.mkdir(parents=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=nixery test CA", "-keyout", str(d / "ca.key"), "-out", str(ca_dir / "ca.crt")])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr")])
    (d / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(ca_dir / "ca.crt"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"),
         "-out", str(d / "server.crt")])
    return ca_dir, d / "server.crt", d / "server.key"


def accepts_unix(path):
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


def accepts_tcp(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, process, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError("%s exited with %d" % (what, process.returncode))
        time.sleep(0.1)
    raise AssertionError("%s did not come up within %d s" % (what, timeout))


class ProductionSite:
    """`make install` with the site's paths, the installed worker pool, and
    nginx with the installed production configuration."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nixery-site-"))
        self.https_port = free_port()
        self.http_port = free_port()
        self.state = self.dir / "state"
        self.storage = self.dir / "storage"
        self.state.mkdir()
        self.ca_dir, self.certificate, self.key = make_ca_and_certificate(self.dir / "tls")
        self.root = install(
            self.dir / "root",
            SITE_SERVER_NAME="localhost",
            SITE_HTTPS_LISTEN="127.0.0.1:%d" % self.https_port,
            SITE_HTTP_LISTEN="127.0.0.1:%d" % self.http_port,
            SITE_CERTIFICATE=self.certificate,
            SITE_CERTIFICATE_KEY=self.key,
            SITE_SOCKET=self.state / "fcgi.sock",
            SITE_STATE_DIR=self.state,
            SITE_STORAGE_PATH=self.storage)
        self.site_config = self.root / "etc/nginx/sites-available/nixery.conf"
        self.nginx_dir = self.dir / "nginx"
        for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            (self.nginx_dir / "tmp" / sub).mkdir(parents=True)
        self.nginx_conf = self.nginx_dir / "nginx.conf"
        self.error_log = self.nginx_dir / "error.log"
        self.pool = None
        self.nginx = None
        self.pool_log = self.dir / "pool.log"

    def write_nginx_conf(self):
        """The machine's nginx.conf, as Debian's includes sites-enabled/."""
        t = self.nginx_dir / "tmp"
        self.nginx_conf.write_text("""
%(user)s
worker_processes 2;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
daemon off;
events { worker_connections 256; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(tmp)s/body;
    fastcgi_temp_path %(tmp)s/fastcgi;
    proxy_temp_path %(tmp)s/proxy;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    default_type application/octet-stream;
    include %(site)s;
}
""" % {"user": "user root;" if os.geteuid() == 0 else "", "dir": self.nginx_dir, "tmp": t,
       "site": self.site_config})

    def nginx_test(self):
        return run([NGINX, "-t", "-p", str(self.nginx_dir), "-e", str(self.error_log),
                    "-c", str(self.nginx_conf)], check=False)

    def start(self, **settings):
        env = base_environment()
        env.update({"NIXERY_STATE_DIR": str(self.state), "STORAGE_PATH": str(self.storage),
                    "NIXERY_PKGS_PATH": str(make_package_set(self.dir)), "NIXERY_WORKERS": "2"})
        env.update(settings)
        self.env = env
        self._pool_log = open(self.pool_log, "ab")
        # The installed binary, finding its data files under the DESTDIR,
        # given its socket the way nixery.socket does (LISTEN_FDS) when
        # systemd's tool for that is here.
        argv = [str(self.root / "usr/bin/nixery"), "serve"]
        if shutil.which("systemd-socket-activate"):
            self.socket_activated = True
            argv = ["systemd-socket-activate", "-l", str(self.state / "fcgi.sock")] + \
                ["--setenv=%s=%s" % kv for kv in env.items()] + argv
        self.pool = subprocess.Popen(argv, env=env, stdout=self._pool_log, stderr=subprocess.STDOUT)
        wait_for(lambda: accepts_unix(self.state / "fcgi.sock"), self.pool, "the worker pool")
        self.write_nginx_conf()
        result = self.nginx_test()
        if result.returncode != 0:
            raise AssertionError("nginx -t failed:\n" + result.stderr.decode())
        self.start_nginx()
        return self

    def start_nginx(self):
        self.nginx = subprocess.Popen([NGINX, "-p", str(self.nginx_dir), "-e", str(self.error_log),
                                       "-c", str(self.nginx_conf)])
        wait_for(lambda: accepts_tcp(self.https_port), self.nginx, "nginx")

    def stop_nginx(self):
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            self.nginx.wait(60)
        self.nginx = None

    def stop(self):
        self.stop_nginx()
        if self.pool is not None and self.pool.poll() is None:
            self.pool.send_signal(signal.SIGTERM)
            self.pool.wait(120)
        if self.pool is not None:
            self._pool_log.close()
        code = self.pool.returncode if self.pool is not None else 0
        self.pool = None
        return code

    def enable_basic_auth(self, user, password):
        """What the README tells an administrator to do: a password file and
        the two commented lines of the server block uncommented."""
        hashed = run(["openssl", "passwd", "-apr1", password]).stdout.decode().strip()
        htpasswd = self.dir / "htpasswd"
        htpasswd.write_text("%s:%s\n" % (user, hashed))
        text = self.site_config.read_text()
        text = text.replace('#auth_basic "nixery";', 'auth_basic "nixery";')
        text = text.replace("#auth_basic_user_file /etc/nixery/htpasswd;",
                            "auth_basic_user_file %s;" % htpasswd)
        self.site_config.write_text(text)

    def check_logs(self, expected_errors=()):
        bad = [l for l in self.error_log.read_text().splitlines()
               if any(level in l for level in ("[alert]", "[crit]", "[emerg]"))] \
            if self.error_log.exists() else []
        if bad:
            raise AssertionError("nginx logged alerts:\n" + "\n".join(bad))
        for line in self.pool_log.read_text(errors="replace").splitlines():
            if '"level":"error"' in line and not any(e in line for e in expected_errors):
                raise AssertionError("unexpected error in the pool's log: " + line)

    def cleanup(self, failed):
        if failed or keep_dirs():
            print("\n[kept %s]" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
