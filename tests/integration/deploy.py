"""Helpers of the deployment tests: `make install` into a DESTDIR, and a
production site made of what it installed: the installed `nixery serve`
(the worker pool nixery.service runs) behind a real nginx running the
installed production configuration, with TLS from a certificate authority
the test makes with the openssl CLI.

nginx runs with its own pid, temp and log paths (Debian's nginx has
compiled-in /var paths), listens on 127.0.0.1 only and is stopped by its
PID.

The permission model. Run as root (as .ci/run does), the site is set up as
the units and sysusers.d set up a machine, so that the modes of the socket,
the directories and the blobs are really put to the test:

  nixery.service        the pool as `nobody`, group `nogroup`, umask 0027,
                        building through a Nix daemon (NIX_REMOTE), with
                        the state directory (and storage/ in it) 0710, the
                        cache 0700, all theirs (StateDirectory=, …)
  nixery.socket         the socket made by root, then nobody:nogroup 0660
  nginx's workers       `www-data`, with `nogroup` as their group: what the
                        sysusers.d line "m www-data nixery" gives them

No user or group is created or changed: these are Debian's own accounts
(base-passwd). The Nix daemon is the test's own, on a socket in the site
directory, so the machine's daemon, its trusted users and its socket's
group (nix-users on Debian) play no part. Without root, or without those
accounts, setpriv or nix-daemon, everything runs as the invoking user, as
before."""

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import (ROOT, NixDaemon, accepts_unix, base_environment, free_port, keep_dirs,
                     make_package_set, run)

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


def accepts_tcp(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


POOL_USER, POOL_GROUP, NGINX_USER = "nobody", "nogroup", "www-data"


def _account_exists(lookup, name):
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def permission_model_available():
    """Why the permission model cannot be used here; empty when it can."""
    if os.geteuid() != 0:
        return "not running as root"
    for lookup, name in ((pwd.getpwnam, POOL_USER), (grp.getgrnam, POOL_GROUP),
                         (pwd.getpwnam, NGINX_USER)):
        if not _account_exists(lookup, name):
            return "no account %s" % name
    for program in ("setpriv", "nix-daemon"):
        if not shutil.which(program):
            return "no %s" % program
    return ""


def as_user(user, group, *argv):
    """argv run by `user` with `group` as its only group (setpriv)."""
    return ["setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups", "--"] + list(argv)


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
        why_not = permission_model_available()
        self.unprivileged = not why_not
        print("\n[deploy] %s" % ("pool as %s:%s, nginx as %s:%s, umask 0027" %
                                 (POOL_USER, POOL_GROUP, NGINX_USER, POOL_GROUP)
                                 if self.unprivileged else "everything as this user: " + why_not))
        self.https_port = free_port()
        self.http_port = free_port()
        # As on a machine: /var/lib/nixery (storage/ in it), /var/cache/nixery
        # and /run/nixery (the socket's directory, systemd's).
        self.state = self.dir / "state"
        self.storage = self.state / "storage"
        self.cache = self.dir / "cache"
        self.run_dir = self.dir / "run"
        for d in (self.state, self.storage, self.cache, self.run_dir):
            d.mkdir()
        self.socket_activated = shutil.which("systemd-socket-activate") is not None
        # Without systemd's tool the pool makes its own socket, in the state
        # directory.
        self.socket = (self.run_dir if self.socket_activated else self.state) / "fcgi.sock"
        self.ca_dir, self.certificate, self.key = make_ca_and_certificate(self.dir / "tls")
        self.root = install(
            self.dir / "root",
            SITE_SERVER_NAME="localhost",
            SITE_HTTPS_LISTEN="127.0.0.1:%d" % self.https_port,
            SITE_HTTP_LISTEN="127.0.0.1:%d" % self.http_port,
            SITE_CERTIFICATE=self.certificate,
            SITE_CERTIFICATE_KEY=self.key,
            SITE_SOCKET=self.socket,
            SITE_CACHE_DIR=self.dir / "nginx" / "cache",
            SITE_ACCESS_LOG=self.dir / "nginx" / "access.log",
            SITE_STATE_DIR=self.state,
            SITE_STORAGE_PATH=self.storage)
        self.site_config = self.root / "etc/nginx/sites-available/nixery.conf"
        self.nginx_dir = self.dir / "nginx"
        for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            (self.nginx_dir / "tmp" / sub).mkdir(parents=True)
        self.nginx_conf = self.nginx_dir / "nginx.conf"
        self.error_log = self.nginx_dir / "error.log"
        self.access_log = self.nginx_dir / "access.log"
        self.pool = None
        self.nginx = None
        self.nix_daemon = None
        self.pool_log = self.dir / "pool.log"
        self.package_set = make_package_set(self.dir)
        if self.unprivileged:
            self.set_up_permissions()

    def set_up_permissions(self):
        """Modes and owners as systemd gives them to nixery.service."""
        os.chmod(self.dir, 0o755)  # mkdtemp's 0700 would hide everything
        # The package set imports the demo set: a copy of it here, so that
        # the pool can read it whatever the checkout's directory modes are.
        demo = self.dir / "demo"
        shutil.copytree(ROOT / "src/nix/demo", demo)
        default = self.package_set / "default.nix"
        default.write_text(default.read_text().replace(str(ROOT / "src/nix/demo"), str(demo)))
        uid, gid = pwd.getpwnam(POOL_USER).pw_uid, grp.getgrnam(POOL_GROUP).gr_gid
        for d, mode in ((self.state, 0o710), (self.storage, 0o710), (self.cache, 0o700)):
            os.chown(d, uid, gid)
            os.chmod(d, mode)

    def start(self, **settings):
        env = base_environment()
        env.update({"NIXERY_STATE_DIR": str(self.state), "STORAGE_PATH": str(self.storage),
                    "NIXERY_PKGS_PATH": str(self.package_set), "NIXERY_WORKERS": "2",
                    "HOME": str(self.state), "XDG_CACHE_HOME": str(self.cache)})
        if self.unprivileged:
            # As nixery.service: through the daemon, which has the settings
            # (a daemon ignores an untrusted user's, and newer ones warn).
            self.nix_daemon = NixDaemon(self.dir)
            env["NIX_REMOTE"] = self.nix_daemon.remote
            env["NIX_CONFIG"] = "substituters =\n"
        env.update(settings)
        self.env = env
        self._pool_log = open(self.pool_log, "ab")
        # The installed binary, finding its data files under the DESTDIR,
        # given its socket the way nixery.socket does (LISTEN_FDS) when
        # systemd's tool for that is here.
        argv = [str(self.root / "usr/bin/nixery"), "serve"]
        if self.unprivileged:
            argv = as_user(POOL_USER, POOL_GROUP, *argv)
        if self.socket_activated:
            argv = ["systemd-socket-activate", "-l", str(self.socket)] + \
                ["--setenv=%s=%s" % kv for kv in env.items()] + argv
        self.pool = subprocess.Popen(argv, env=env, stdout=self._pool_log, stderr=subprocess.STDOUT,
                                     umask=0o027 if self.unprivileged else -1)
        wait_for(lambda: self.socket.exists(), self.pool, "the worker pool's socket")
        if self.unprivileged and self.socket_activated:
            # SocketUser=, SocketGroup=, SocketMode= of nixery.socket.
            os.chown(self.socket, pwd.getpwnam(POOL_USER).pw_uid, grp.getgrnam(POOL_GROUP).gr_gid)
            os.chmod(self.socket, 0o660)
        wait_for(lambda: accepts_unix(self.socket), self.pool, "the worker pool")
        self.write_nginx_conf()
        result = self.nginx_test()
        if result.returncode != 0:
            raise AssertionError("nginx -t failed:\n" + result.stderr.decode())
        self.start_nginx()
        return self

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
""" % {"user": ("user %s %s;" % (NGINX_USER, POOL_GROUP) if self.unprivileged
                 else "user root;" if os.geteuid() == 0 else ""),
       "dir": self.nginx_dir, "tmp": t, "site": self.site_config})

    def nginx_test(self):
        return run([NGINX, "-t", "-p", str(self.nginx_dir), "-e", str(self.error_log),
                    "-c", str(self.nginx_conf)], check=False)

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
        if self.nix_daemon is not None:
            self.nix_daemon.stop()
            self.nix_daemon = None
        return code

    def can_read(self, user, path):
        """Whether `user`, with the pool's group as its only group, can
        read `path` (a file) or list it (a directory)."""
        test = ["ls", str(path)] if Path(path).is_dir() else ["head", "-c", "1", str(path)]
        return run(as_user(user, POOL_GROUP, *test), check=False).returncode == 0

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
