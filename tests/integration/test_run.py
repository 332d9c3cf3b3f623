"""`nixery run` (what `make run` starts): instances side by side, clean
shutdown, and configuration errors that stop it at start-up."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import NIXERY, Instance, TestCase, base_environment


class RunTest(TestCase):
    def test_two_instances_side_by_side(self):
        with Instance() as a, Instance() as b:
            self.assertEqual(a.manifest("app-a").status, 200)
            self.assertEqual(b.manifest("libgreet").status, 200)
            self.assertEqual(len(a.builds()), 1)
            self.assertEqual(len(b.builds()), 1)
            self.assertNotEqual(set(p.name for p in a.blob_files()), set(p.name for p in b.blob_files()))

    def test_sigterm_stops_everything_cleanly(self):
        inst = Instance().start()
        try:
            self.assertEqual(inst.manifest("hello").status, 200)
            pids = [inst.process.pid] + inst.children(inst.process.pid)
            pids += inst.worker_pids()
        finally:
            code = inst.stop()
        self.assertEqual(code, 0)
        for pid in pids:
            self.assertFalse(Path("/proc/%d" % pid).exists() and
                             "zombie" not in Path("/proc/%d/status" % pid).read_text(), pid)
        self.assertFalse((inst.state / "fcgi.sock").exists())
        # The log went to the terminal and to the state directory, to the end.
        log = (inst.state / "nixery.log").read_text()
        self.assertIn('"msg":"stopped"', log)
        self.assertIn('"path":"/v2/hello/manifests/latest"', log)
        self.assertFalse((inst.state / "nginx.pid").exists())
        inst.check_logs()

    def test_a_restart_empties_nginx_s_manifest_cache(self):
        # Answers kept from before (another version, other settings) would
        # be served for tags for minutes after the restart.
        with Instance() as inst:
            self.assertEqual(inst.manifest("hello").status, 200)
            self.assertEqual(inst.manifest("hello").status, 200)  # from nginx's cache now
            cache = inst.state / "nginx-cache"
            before = {p for p in cache.rglob("*") if p.is_file()}
            self.assertTrue(before)
            inst.stop()
            inst.start()
            self.assertFalse(before & {p for p in cache.rglob("*") if p.is_file()})
            self.assertEqual(inst.manifest("hello").status, 200)

    def test_a_restart_says_when_every_image_will_be_built_anew(self):
        # A changed compression (or layering, popularity data, or a release's
        # key versions) misses the cache for every image: said at start.
        def warnings():
            return [r for r in inst.log_records() if "keys cover changed" in r.get("msg", "")]

        with Instance() as inst:
            inst.stop()
            inst.start()  # the same settings: nothing to say
            self.assertEqual(warnings(), [])
            inst.stop()
            inst.env["NIXERY_LAYER_COMPRESSION"] = "zstd"
            inst.start()
            said = warnings()
            self.assertEqual(len(said), 1, said)
            self.assertEqual(said[0]["changed"], "layer compression: gzip -> zstd")
            self.assertEqual(said[0]["level"], "warn")

    def start_failure(self, **settings):
        with tempfile.TemporaryDirectory() as tmp:
            env = base_environment()
            env.update({"PORT": "1", "STORAGE_PATH": tmp + "/s", "NIXERY_STATE_DIR": tmp + "/state"})
            env.update(settings)
            r = subprocess.run([str(NIXERY), "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            return r.stdout.decode()

    def test_configuration_errors_stop_start_up(self):
        out = self.start_failure(NIXERY_PKGS_PATH="/tmp", NIXERY_CHANNEL="nixos-unstable")
        for name in ("NIXERY_CHANNEL", "NIXERY_PKGS_REPO", "NIXERY_PKGS_PATH"):
            self.assertIn(name, out)
        self.assertIn("unknown setting NIXERY_TYPO", self.start_failure(NIXERY_TYPO="1"))
        self.assertIn("NIX_TIMEOUT", self.start_failure(NIX_TIMEOUT="soon"))
        self.assertIn("GCS_BUCKET is set", self.start_failure(GCS_BUCKET="b"))
        self.assertIn("does not exist", self.start_failure(NIXERY_PKGS_PATH="/nonexistent/pkgs"))
        self.assertIn("NIXERY_STORAGE_BACKEND", self.start_failure(NIXERY_STORAGE_BACKEND="ftp"))

    def test_help_and_stray_arguments(self):
        for command in ("serve", "run"):
            helped = subprocess.run([str(NIXERY), command, "--help"], capture_output=True, text=True)
            self.assertEqual(helped.returncode, 0, helped.stderr)
            self.assertIn("usage: nixery COMMAND", helped.stdout)
            stray = subprocess.run([str(NIXERY), command, "--port", "80"], capture_output=True,
                                   text=True, timeout=10)
            self.assertEqual(stray.returncode, 2)
            self.assertIn("serve and run take no arguments", stray.stderr)

    def test_every_command_s_help_and_mistakes(self):
        # One way for all: --help prints the command's usage on stdout and
        # exits 0; a mistake exits 2 with a line naming it, then the usage.
        mistakes = {
            "gc": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                   (["--keep-days"], "--keep-days needs a number of days"),
                   (["stray"], 'unexpected argument "stray"'),
                   (["--keep-days", "x"], '--keep-days must be a whole number of days, not "x"')],
            "layers": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                       (["--graph"], "--graph needs a file"),
                       (["stray"], 'unexpected argument "stray"')],
            "popcount": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                         (["--output"], "--output needs a file name"),
                         (["stray"], 'unexpected argument "stray"'),
                         (["--channel", "a/b"], '--channel "a/b" is not a channel name'),
                         (["--store-paths", "u", "--jobs", "0"], '--jobs must be a whole number'),
                         (["--jobs", "4"], "--jobs need --channel or --store-paths"),
                         (["--store-paths", "u", "--cache", "file:///c"], "is not an http(s):// URL")],
            "nginx-config": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                             (["--listen"], "--listen needs a value"),
                             (["stray"], 'unexpected argument "stray"')],
            "prebuild": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                         (["Bad Name"], '"Bad Name" is not an image name[:tag]'),
                         ([], "no image named")],
            "build": [(["--frobnicate"], 'unknown option "--frobnicate"'),
                      (["app-a", "--output"], "--output needs a directory")],
        }
        # A single-valued option given twice: which value was meant?
        for command, option in [("gc", "--keep-days"), ("layers", "--budget"), ("popcount", "--output"),
                                ("nginx-config", "--listen"), ("build", "--output")]:
            mistakes[command].append(([option, "1", option, "2"],
                                      '%s is given twice ("1" and "2"): give it once' % option))
        mistakes["build"].append((["app-a", "-o", "a", "--output", "b"], "--output is given twice"))
        mistakes["popcount"].append((["--channel", "a", "--store-paths", "u"],
                                     "--channel and --store-paths both name the list"))
        # In a directory of its own: on old code a mistake may run the command.
        cwd = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, cwd, True)
        for command, cases in mistakes.items():
            for help in ("--help", "-h"):
                helped = subprocess.run([str(NIXERY), command, help], capture_output=True, text=True,
                                        env=base_environment(), cwd=cwd, timeout=10)
                self.assertEqual((helped.returncode, helped.stderr), (0, ""), command)
                self.assertTrue(helped.stdout.startswith("usage: nixery " + command), helped.stdout)
            for args, words in cases:
                with self.subTest(command=command, args=args):
                    r = subprocess.run([str(NIXERY), command] + args, capture_output=True, text=True,
                                       env=base_environment(), cwd=cwd, timeout=10)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertEqual(r.stdout, "")
                    first, usage = r.stderr.split("\n", 1)
                    self.assertTrue(first.startswith("nixery %s: " % command), first)
                    self.assertIn(words, first)
                    self.assertTrue(usage.startswith("usage: nixery " + command), usage)

    def test_demo_package_set_without_source(self):
        with Instance(NIXERY_PKGS_PATH=None) as inst:
            r = inst.manifest("shell/hello")
            self.assertEqual(r.status, 200, r)
            self.assertIn("demo", inst.log_text())
