"""Runs the integration tests, several test classes at once.

Every test class starts its own instances and servers (free loopback ports,
its own temporary directories, salted package sets), so classes share
nothing but the machine and the Nix store, and most of their time is spent
waiting on Nix, nginx and clients: running them side by side, each class in
a process of its own, cuts the wall time. A module that measures wall time
tightly declares `RUN_ALONE = True` at its top level and runs after the
others, on its own.

    run.py [-j JOBS] [-k PATTERN] [MODULE...]

-k is unittest's: only test methods and classes matching PATTERN (a
substring or a glob) run; modules with none still start, and end at once.
Each class's output is printed whole when it ends; the summary lists every
class with its result and duration. The exit code is 0 when all passed.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def modules(names):
    found = sorted(p.stem for p in HERE.glob("test_*.py"))
    if names:
        missing = [n for n in names if n.removesuffix(".py") not in found]
        if missing:
            sys.exit("no such test module: " + ", ".join(missing))
        return [n.removesuffix(".py") for n in names]
    return found


def runs_alone(module):
    return re.search(r"^RUN_ALONE = True$", (HERE / (module + ".py")).read_text(), re.M) is not None


def test_classes(module):
    """The module's test classes that hold tests, as unittest names
    ("test_pull.PullTest"), as unittest's loader finds them; the module
    itself when it cannot be loaded here (its own run reports why)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    names = []

    def walk(suite):
        for test in suite:
            if isinstance(test, unittest.TestSuite):
                walk(test)
                continue
            if type(test).__module__ == "unittest.loader":  # an import that failed
                raise ImportError(module)
            name = "%s.%s" % (type(test).__module__, type(test).__name__)
            if name not in names:
                names.append(name)

    try:
        walk(unittest.defaultTestLoader.loadTestsFromName(module))
    except Exception:
        return [module]
    return names or [module]


class Run:
    def __init__(self, module, pattern):
        self.module = module
        self.output = tempfile.TemporaryFile()
        argv = [sys.executable, "-m", "unittest", "-v"]
        if pattern:
            argv += ["-k", pattern]
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv + [module], cwd=HERE, stdout=self.output,
                                        stderr=subprocess.STDOUT)
        self.seconds = None

    def poll(self):
        if self.process.poll() is None:
            return False
        self.seconds = time.monotonic() - self.started
        return True

    def text(self):
        self.output.seek(0)
        return self.output.read().decode(errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int,
                        default=int(os.environ.get("NIXERY_TEST_JOBS", "4")))
    parser.add_argument("-k", dest="pattern", default="")
    parser.add_argument("module", nargs="*")
    args = parser.parse_args()

    todo = modules(args.module)
    # The largest modules first, so a long one does not start last.
    together = [c for m in sorted((m for m in todo if not runs_alone(m)),
                                  key=lambda m: -(HERE / (m + ".py")).stat().st_size)
                for c in test_classes(m)]
    alone = [m for m in todo if runs_alone(m)]
    started = time.monotonic()
    done = []

    def finish(run):
        done.append(run)
        print("=" * 70 + "\n%s (%.0f s)\n" % (run.module, run.seconds) + run.text(), flush=True)

    running = []
    for batch, jobs in ((together, max(1, args.jobs)), (alone, 1)):
        queue = list(batch)
        while queue or running:
            while queue and len(running) < jobs:
                running.append(Run(queue.pop(0), args.pattern))
            time.sleep(0.2)
            for run in [r for r in running if r.poll()]:
                running.remove(run)
                finish(run)

    counts = {"ran": 0, "failed": 0, "skipped": 0}
    for run in done:
        text = run.text()
        ran = sum(int(n) for n in re.findall(r"^Ran (\d+) tests? in", text, re.M))
        counts["ran"] += ran
        for key, word in (("failed", "failures"), ("failed", "errors"), ("skipped", "skipped")):
            counts[key] += sum(int(n) for n in re.findall(r"\b%s=(\d+)" % word, text))
        # A class that ran nothing was not found or lost its tests: a failure,
        # unless -k chose no test of it.
        if ran == 0 and not args.pattern:
            run.empty = True
    failed = [r for r in done if r.process.returncode != 0 or getattr(r, "empty", False)]
    print("=" * 70)
    for run in sorted(done, key=lambda r: -r.seconds):
        print("%-48s %-6s %5.0f s" % (run.module, "FAILED" if run in failed else "ok", run.seconds))
    print("%d test classes and modules in %.0f s, %d jobs; %s" % (
        len(done), time.monotonic() - started, args.jobs,
        "FAILED: " + " ".join(r.module for r in failed) if failed else "all passed"))
    print("%d passed, %d failed, %d skipped" % (
        counts["ran"] - counts["failed"] - counts["skipped"], counts["failed"], counts["skipped"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
