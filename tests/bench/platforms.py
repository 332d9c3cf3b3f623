#!/usr/bin/env python3
"""Wall time of a cold pull of pause.s6.vN (a test package whose build
sleeps 6 s) with one platform and with two
(NIXERY_PLATFORMS=linux/amd64,linux/arm64): the platforms build side by
side, so two take about as long as one.

    python3 tests/bench/platforms.py
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Instance, base_environment
from test_slow_builds import fresh_salt
LIST = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
two = dict(NIXERY_PLATFORMS="linux/amd64,linux/arm64", NIXERY_MAX_BUILDS=2,
           NIX_CONFIG=base_environment()["NIX_CONFIG"] + "extra-platforms = aarch64-linux\n")
for label, settings in (("one platform", dict(NIXERY_MAX_BUILDS=2)), ("two platforms", two)):
    with Instance(salt=fresh_salt(), **settings) as inst:
        for v in ("v10", "v11"):
            t = time.time()
            r = inst.manifest("pause.s6." + v, accept=LIST)
            print("%-14s %s status %d %s %.1f s" % (label, v, r.status, r.header("Content-Type").rsplit("/", 1)[-1], time.time() - t))
