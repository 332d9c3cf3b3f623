#!/usr/bin/env python3
"""Layering benchmark: how many bytes a node downloads to pull a corpus of
related images, per layering strategy and budget, against the ideal (one
layer per store path), and what a version bump of a common library costs.

The corpus stands in for Nix closures with Debian's dependency data
(`apt-cache depends`, sizes from `apt-cache show`): each Debian package is a
store path named `<package>-<version>` whose hash covers its version and the
hashes of its dependencies, as a Nix output's does, so a bump of zlib1g
changes the store path of everything that depends on it, under the same
names. Popularity is counted over all of Debian's packages, as `nixery
popcount` counts it over a channel (with --popcount, by `nixery popcount`
itself, from a binary cache of narinfo files the bench serves on loopback,
and checked against the direct count). Every image is grouped by `nixery
layers`, the code the registry runs.

Two yardsticks that need no data are computed here rather than by the
registry: nixpkgs' popularity contest (streamLayeredImage's default) and
size-first (the budget - 1 biggest paths alone, the rest in one layer).
Two reference rows per budget are not strategies at all:
- "knows every image": each image's paths grouped by the set of corpus
  images that contain them (paths in the same images go together), the
  budget - 1 largest groups alone and the rest in one layer. It needs to
  know which images a node will pull, which neither popularity data nor a
  closure tells.
- "lower bound": no layering with at most `budget` layers per image can
  download less (see lower_bound()).

    tests/bench/layering.py [--nixery build/nixery] [--keep DIR] [--popcount]

Bytes are NAR sizes (uncompressed); a layer is downloaded once per node
(runtimes fetch blobs by digest, and a layer's digest follows from its
sorted store paths)."""

import argparse
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Leaf packages people put in container images; images are each alone and
# some combinations of them.
SEEDS = [
    "curl", "wget", "git", "openssh-client", "rsync", "jq", "vim-nox", "nano", "htop", "tmux",
    "zsh", "python3", "python3-requests", "python3-numpy", "python3-yaml", "perl", "ruby",
    "nodejs", "golang-go", "rustc", "gcc", "g++", "make", "cmake", "postgresql-client",
    "default-mysql-client", "redis-tools", "sqlite3", "nginx", "apache2", "imagemagick",
    "ffmpeg", "graphviz", "gnupg", "openssl", "bash", "lua5.4", "php-cli", "openjdk-17-jre-headless",
    "ansible",
]
COMBOS = [
    ("python3", "git"), ("curl", "jq"), ("gcc", "make", "cmake"), ("python3", "python3-numpy", "gcc"),
    ("nginx", "openssl"), ("git", "openssh-client", "rsync"), ("nodejs", "git"), ("ruby", "gcc", "make"),
    ("postgresql-client", "python3"), ("imagemagick", "ffmpeg"), ("perl", "make"),
    ("golang-go", "git"), ("rustc", "gcc"), ("vim-nox", "git", "tmux"), ("zsh", "htop", "curl"),
    ("python3-requests", "python3-yaml"), ("apache2", "php-cli"), ("graphviz", "python3"),
    ("sqlite3", "python3"), ("redis-tools", "curl"), ("gnupg", "curl", "git"), ("lua5.4", "nginx"),
    ("ansible", "openssh-client"), ("openjdk-17-jre-headless", "curl"), ("default-mysql-client", "php-cli"),
    ("wget", "jq", "python3"), ("nano", "bash", "curl"), ("g++", "cmake", "git"),
]
# What the registry adds to every image (the certificates and iana-etc's
# /etc/services and /etc/protocols), here two Debian packages without
# dependencies: every image has them as roots of their own.
EXTRAS = ("netbase", "media-types")
BUMPED = "zlib1g"
BUDGETS = [94, 20]
HASH_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"


def apt(args):
    return subprocess.run(["apt-cache"] + args, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout


def debian_package_set():
    """Every package apt knows: (version, installed bytes) and its
    dependencies, the first installable alternative of each Depends or
    Pre-Depends group (a virtual package: its first provider by name)."""
    out = apt(["dumpavail"])
    stanzas = []
    for stanza in out.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if "Package" in fields:
            stanzas.append(fields)
    info, providers = {}, {}
    for f in stanzas:
        name = f["Package"]
        if name in info:
            continue
        version = re.sub(r"^\d+:", "", f.get("Version", "0"))
        version = re.sub(r"[^A-Za-z0-9+._?=-]", "_", version)
        info[name] = (version, int(f.get("Installed-Size", "1")) * 1024)
        for provided in f.get("Provides", "").split(","):
            provided = re.sub(r"\(.*?\)", "", provided).strip()
            if provided:
                providers.setdefault(provided, set()).add(name)
    graph, done = {}, set()
    for f in stanzas:
        name = f["Package"]
        if name in done:
            continue
        done.add(name)
        deps = set()
        for field in ("Pre-Depends", "Depends"):
            for group in f.get(field, "").split(","):
                for alt in group.split("|"):
                    alt = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alt).strip().split(":")[0]
                    if not alt:
                        continue
                    if alt in info:
                        deps.add(alt)
                        break
                    if alt in providers:
                        deps.add(sorted(providers[alt])[0])
                        break
        deps.discard(name)
        graph[name] = sorted(deps)
    return graph, info


def break_cycles(graph):
    """Debian's dependencies have cycles (libc6 and libgcc-s1), store paths
    cannot: drop the edges that close one, deterministically."""
    state = {}
    for root in sorted(graph):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, list(graph[root]))]
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                continue
            dep = todo.pop(0)
            if state.get(dep) == 1:
                graph[node].remove(dep)
            elif dep not in state:
                state[dep] = 1
                stack.append((dep, list(graph[dep])))
    return graph


class Universe:
    """Store paths for every package: hashes cover the version and the
    dependencies' hashes, so a bump ripples up like a Nix rebuild."""

    def __init__(self, graph, info, versions=None):
        self.graph, self.size, self.path = graph, {}, {}
        versions = versions or {}
        order, seen = [], set()
        for root in sorted(graph):  # postorder: dependencies first
            stack = [(root, iter(graph[root]))]
            if root in seen:
                continue
            seen.add(root)
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    order.append(node)
                    stack.pop()
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, iter(graph[nxt])))
        for p in order:
            version, size = info[p]
            version = versions.get(p, version)
            h = hashlib.sha256((p + "\0" + version + "\0" +
                                "\0".join(sorted(self.path[d] for d in graph[p]))).encode()).digest()
            digest = "".join(HASH_ALPHABET[b % 32] for b in h[:32])
            self.path[p] = "/nix/store/%s-%s-%s" % (digest, p, version)
            self.size[self.path[p]] = size

    def closure(self, roots):
        seen, stack = set(), list(roots)
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self.graph[p])
        return seen

    def graph_json(self, roots):
        return {"exportReferencesGraph": {"graph": [self.path[r] for r in roots]},
                "graph": [{"path": self.path[p], "narSize": self.size[self.path[p]],
                           "references": [self.path[d] for d in self.graph[p]]}
                          for p in sorted(self.closure(roots))]}

    def popularity(self):
        """What `nixery popcount` counts: for each name, how many packages
        have it in their closure, not counting themselves."""
        counts = {}
        for p in self.graph:
            for d in self.closure([p]) - {p}:
                name = self.path[d].split("-", 1)[1]
                counts[name] = counts.get(name, 0) + 1
        return counts


def popcount(nixery, work, universe, label):
    """Popularity as `nixery popcount --store-paths URL --cache URL` counts
    it: the package set's store paths as a channel lists them, and a narinfo
    file per store path (its NAR size and references) in a binary cache
    served on loopback."""
    root = work / ("channel-" + label)
    (root / "cache").mkdir(parents=True, exist_ok=True)
    base = {p: universe.path[p][len("/nix/store/"):] for p in universe.graph}
    for p, b in base.items():
        (root / "cache" / (b[:32] + ".narinfo")).write_text(
            "StorePath: /nix/store/%s\nURL: nar/%s.nar\nCompression: none\n"
            "NarHash: sha256:%s\nNarSize: %d\nReferences: %s\n" % (
                b, b[:32], (b[:32] * 2)[:52], universe.size[universe.path[p]],
                " ".join([b] + [base[d] for d in universe.graph[p]])))
    (root / "store-paths").write_text("".join(universe.path[p] + "\n" for p in sorted(base)))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = root / "popularity.json"
        subprocess.run([nixery, "popcount", "--store-paths", "file://%s/store-paths" % root,
                        "--cache", "http://127.0.0.1:%d/cache" % server.server_address[1],
                        "--journal", str(root / "journal"), "--output", str(out)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        server.shutdown()
        server.server_close()
    counts = json.loads(out.read_text())
    shutil.rmtree(root)
    return counts


def image_sets(closures):
    """For each store path, the images (indexes) whose closure has it."""
    images_of = {}
    for i, closure in enumerate(closures):
        for p in closure:
            images_of.setdefault(p, set()).add(i)
    return {p: frozenset(s) for p, s in images_of.items()}


def knows_every_image(closures, sizes, budget):
    """The reference that knows the corpus: per image, its paths grouped by
    the set of images that contain them, the budget - 1 largest groups
    alone, the rest in one layer."""
    images_of = image_sets(closures)
    out = []
    for closure in closures:
        groups = {}
        for p in closure:
            groups.setdefault(images_of[p], []).append(p)
        groups = sorted((tuple(sorted(g)) for g in groups.values()),
                        key=lambda g: (-sum(sizes[p] for p in g), g))
        if len(groups) > budget:
            groups = groups[:budget - 1] + [tuple(sorted(p for g in groups[budget - 1:] for p in g))]
        out.append(groups)
    return out


def lower_bound(closures, sizes, budget):
    """Bytes that any layering with at most `budget` layers per image makes a
    node download to pull every image.

    A path is downloaded once only if its one layer is used by every image
    that has the path, so by exactly those images (call them the path's
    image set); every other path at least twice. An image's layers give at
    most `budget` image sets of paths downloaded once. So with C = bytes
    downloaded once: download >= 2 * ideal - C, and C is at most the most
    bytes of image-set groups one can pick with at most `budget` groups
    containing each image. That maximum is bounded above by any solution
    of its linear program's dual: for prices y[image] >= 0,
        budget * sum(y) + sum over groups of max(0, bytes - sum of y of its images),
    here minimised by exact coordinate descent (any y gives a valid bound)."""
    images_of = image_sets(closures)
    weight = {}
    for p, s in images_of.items():
        weight[s] = weight.get(s, 0) + sizes[p]
    groups = list(weight.items())
    covered = [0.0] * len(groups)
    y = [0.0] * len(closures)
    groups_of = [[g for g, (s, _) in enumerate(groups) if i in s] for i in range(len(closures))]
    for _ in range(200):
        for i, mine in enumerate(groups_of):
            # The best y[i] with the others fixed: the (budget + 1)-th largest
            # remainder of its groups (the slope budget - #{remainder > y} turns >= 0).
            rest = sorted((groups[g][1] - (covered[g] - y[i]) for g in mine), reverse=True)
            best = max(rest[budget], 0.0) if len(rest) > budget else 0.0
            for g in mine:
                covered[g] += best - y[i]
            y[i] = best
    once = budget * sum(y) + sum(max(0.0, w - covered[g]) for g, (_, w) in enumerate(groups))
    ideal = sum(sizes[p] for p in images_of)
    return max(2 * ideal - once, ideal)


def nixpkgs_popularity_contest(universe, roots, budget):
    """The yardstick: nixpkgs' streamLayeredImage default
    (referencesByPopularity): paths by how many paths of the closure depend
    on them, the first budget-1 alone, the rest in one layer."""
    closure = universe.closure(roots)
    dependents = {p: 0 for p in closure}
    for p in closure:
        for d in universe.closure([p]) - {p}:
            dependents[d] += 1
    ranked = sorted(closure, key=lambda p: (-dependents[p], universe.path[p]))
    alone = [[universe.path[p]] for p in ranked[:budget - 1]]
    rest = sorted(universe.path[p] for p in ranked[budget - 1:])
    return alone + ([rest] if rest else [])


def biggest_alone(universe, roots, budget):
    """The size-first yardstick: the budget - 1 biggest paths alone, the
    rest in one layer."""
    ranked = sorted(universe.closure(roots), key=lambda p: (-universe.size[universe.path[p]],
                                                            universe.path[p]))
    alone = [[universe.path[p]] for p in ranked[:budget - 1]]
    rest = sorted(universe.path[p] for p in ranked[budget - 1:])
    return alone + ([rest] if rest else [])


def run_layers(nixery, work, universe, images, budget, strategy, popularity_file):
    """Layers (tuples of store paths) of every image."""
    out = []
    for i, roots in enumerate(images):
        if strategy in ("nixpkgs", "size-first"):
            yardstick = nixpkgs_popularity_contest if strategy == "nixpkgs" else biggest_alone
            out.append([tuple(l) for l in yardstick(universe, roots, budget)])
            continue
        graph_file = work / ("graph-%d.json" % i)
        graph_file.write_text(json.dumps(universe.graph_json(roots)))
        args = [nixery, "layers", "--graph", str(graph_file), "--budget", str(budget),
                "--strategy", strategy]
        if popularity_file:
            args += ["--popularity", str(popularity_file)]
        r = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
        out.append([tuple(l["paths"]) for l in json.loads(r.stdout)["layers"]])
    return out


def layer_bytes(universe_sizes, layers):
    return sum(sum(universe_sizes[p] for p in l) for l in layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nixery", default=str(ROOT / "build" / "nixery"))
    ap.add_argument("--keep", help="write the corpus (graphs, popularity) into this directory")
    ap.add_argument("--only", help="only the rows whose strategy is this (auto, size, …)")
    ap.add_argument("--popcount", action="store_true",
                    help="count popularity with `nixery popcount` (about a minute per count)")
    args = ap.parse_args()
    if shutil.which("apt-cache") is None or not apt(["show", "zlib1g"]).strip():
        print("layering bench: skipped, needs apt-cache with package lists (apt-get update)")
        return 0

    graph, info = debian_package_set()
    graph = break_cycles(graph)
    seeds = [s for s in SEEDS if s in graph]
    images = [(s,) for s in seeds] + [c for c in COMBOS if all(p in seeds for p in c)]
    images = [roots + tuple(e for e in EXTRAS if e in graph) for roots in images]
    old = Universe(graph, info)
    version = info[BUMPED][0]
    bumped_version = re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) + 1), version)
    new = Universe(graph, info, {BUMPED: bumped_version})
    users = sum(1 for img in images if BUMPED in old.closure(img))

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-layering-"))
    work.mkdir(parents=True, exist_ok=True)
    pop_old, pop_new = work / "popularity.json", work / "popularity-bumped.json"
    counts_old, counts_new = old.popularity(), new.popularity()
    if args.popcount:
        for label, universe, direct in (("before", old, counts_old), ("bumped", new, counts_new)):
            counted = popcount(args.nixery, work, universe, label)
            if counted != direct:
                print("layering bench: nixery popcount counts %d names differently" % sum(
                    1 for k in set(counted) | set(direct) if counted.get(k) != direct.get(k)))
                return 1
        print("popularity: nixery popcount over %d packages counts what the bench does" %
              len(graph))
    pop_old.write_text(json.dumps(counts_old, sort_keys=True))
    pop_new.write_text(json.dumps(counts_new, sort_keys=True))

    sizes = dict(old.size)
    sizes.update(new.size)
    old_paths = set(old.path[p] for img in images for p in old.closure(img))
    new_paths = set(new.path[p] for img in images for p in new.closure(img))
    ideal = sum(sizes[p] for p in old_paths)
    ideal_bump = sum(sizes[p] for p in new_paths - old_paths)
    closure_sizes = sorted(len(old.closure(img)) for img in images)
    print("corpus: %d images from Debian's dependency data, %d store paths, %.2f GB; "
          "closures of %d to %d paths (median %d)" % (
              len(images), len(old_paths), ideal / 1e9, closure_sizes[0], closure_sizes[-1],
              closure_sizes[len(closure_sizes) // 2]))
    print("bump: %s %s -> %s, in %d images, changes %d store paths (%.0f MB)" % (
        BUMPED, version, bumped_version, users, len(new_paths - old_paths), ideal_bump / 1e6))
    print("ideal (one layer per store path): %.2f GB for all images, %.0f MB for the bump" % (
        ideal / 1e9, ideal_bump / 1e6))
    print()
    print("bump: after pulling every image, what pulling every image again costs once the")
    print("library is bumped; for popularity, with the data counted before the bump (stale)")
    print("and counted again (fresh)")
    print()
    print("%-34s %6s %9s %8s %10s %8s %11s %8s" % (
        "strategy", "budget", "all (GB)", "x ideal", "bump (MB)", "x ideal", "fresh (MB)",
        "stale/fresh"))

    # (label, strategy, popularity before the bump, after the bump [stale, fresh])
    rows = [
        ("popularity (stale after the bump)", "popularity", pop_old, (pop_old, pop_new)),
        ("size (no data)", "size", None, (None,)),
        ("auto without data (= size)", "auto", None, (None,)),
        ("popularity strategy without data", "popularity", None, (None,)),
        ("nixpkgs popularity contest", "nixpkgs", None, (None,)),
        ("biggest paths alone (size-first)", "size-first", None, (None,)),
    ]
    # The goals of the corpus: with popularity data, without, and stale data
    # after the bump against fresh.
    goals = {"popularity": 1.05, "size": 1.2}
    verdicts = []
    closures_old = [set(old.path[p] for p in old.closure(img)) for img in images]
    closures_new = [set(new.path[p] for p in new.closure(img)) for img in images]
    for budget in BUDGETS:
        for label, strategy, before_file, after_files in rows:
            if args.only and strategy != args.only:
                continue
            before = run_layers(args.nixery, work, old, images, budget, strategy, before_file)
            pulled = set(l for layers in before for l in layers)
            total = layer_bytes(sizes, pulled)
            bumps = []
            for after_file in after_files:
                after = run_layers(args.nixery, work, new, images, budget, strategy, after_file)
                bumps.append(layer_bytes(sizes, set(l for layers in after for l in layers) - pulled))
            fresh = "%.0f" % (bumps[1] / 1e6) if len(bumps) == 2 else "-"
            stale_fresh = "%.2f" % (bumps[0] / bumps[1]) if len(bumps) == 2 else "-"
            print("%-34s %6d %9.2f %8.2f %10.0f %8.2f %11s %8s" % (
                label, budget, total / 1e9, total / ideal, bumps[0] / 1e6,
                bumps[0] / ideal_bump, fresh, stale_fresh))
            if strategy in goals and (strategy != "popularity" or before_file):
                verdicts.append("%s at %d: %.3f x ideal (goal <= %.2f): %s" % (
                    strategy, budget, total / ideal, goals[strategy],
                    "met" if total / ideal <= goals[strategy] else "missed"))
            if len(bumps) == 2:
                verdicts.append("stale/fresh at %d: %.2f (goal <= 1.5): %s" % (
                    budget, bumps[0] / bumps[1], "met" if bumps[0] / bumps[1] <= 1.5 else "missed"))
        if args.only:
            continue
        before = knows_every_image(closures_old, sizes, budget)
        pulled = set(l for layers in before for l in layers)
        total = layer_bytes(sizes, pulled)
        after = knows_every_image(closures_new, sizes, budget)
        bump = layer_bytes(sizes, set(l for layers in after for l in layers) - pulled)
        print("%-34s %6d %9.2f %8.2f %10.0f %8.2f %11s %8s" % (
            "knows every image (reference)", budget, total / 1e9, total / ideal, bump / 1e6,
            bump / ideal_bump, "-", "-"))
        bound = lower_bound(closures_old, sizes, budget)
        print("%-34s %6d %9.2f %8.2f %10s %8s %11s %8s" % (
            "lower bound, any layering", budget, bound / 1e9, bound / ideal, "-", "-", "-", "-"))
    if verdicts:
        print()
        print("goals:")
        for v in verdicts:
            print("  " + v)
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
