#!/usr/bin/env python3
"""Layering benchmark: how many bytes a node downloads to pull a corpus of
related images, per layering strategy and budget, against the ideal (one
layer per store path), and what a version bump of a common library costs.

The corpus stands in for Nix closures with Debian's dependency data
(`apt-cache depends`, sizes from `apt-cache show`): each Debian package is a
store path named `<package>-<version>` whose hash covers its version and the
hashes of its dependencies, as a Nix output's does, so a bump of zlib1g
changes the store path of everything that depends on it, under the same
names. Popularity is counted over the whole corpus' package set, as
`nixery popcount` counts it over a channel. Every image is grouped by
`nixery layers`, the code the registry runs.

    tests/bench/layering.py [--nixery build/nixery] [--keep DIR]

Bytes are NAR sizes (uncompressed); a layer is downloaded once per node
(runtimes fetch blobs by digest, and a layer's digest follows from its
sorted store paths)."""

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
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


def run_layers(nixery, work, universe, images, budget, strategy, popularity_file):
    """Layers (tuples of store paths) of every image."""
    out = []
    for i, roots in enumerate(images):
        if strategy == "nixpkgs":
            out.append([tuple(l) for l in nixpkgs_popularity_contest(universe, roots, budget)])
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
    ap.add_argument("--only", help="only the rows whose strategy is this (auto, chunks, …)")
    args = ap.parse_args()
    if shutil.which("apt-cache") is None or not apt(["show", "zlib1g"]).strip():
        print("layering bench: skipped, needs apt-cache with package lists (apt-get update)")
        return 0

    graph, info = debian_package_set()
    graph = break_cycles(graph)
    seeds = [s for s in SEEDS if s in graph]
    images = [(s,) for s in seeds] + [c for c in COMBOS if all(p in seeds for p in c)]
    old = Universe(graph, info)
    version = info[BUMPED][0]
    bumped_version = re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) + 1), version)
    new = Universe(graph, info, {BUMPED: bumped_version})
    users = sum(1 for img in images if BUMPED in old.closure(img))

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-layering-"))
    work.mkdir(parents=True, exist_ok=True)
    pop_old, pop_new = work / "popularity.json", work / "popularity-bumped.json"
    pop_old.write_text(json.dumps(old.popularity(), sort_keys=True))
    pop_new.write_text(json.dumps(new.popularity(), sort_keys=True))

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
        ("chunks (no data)", "chunks", None, (None,)),
        ("auto without data (= chunks)", "auto", None, (None,)),
        ("popularity strategy without data", "popularity", None, (None,)),
        ("nixpkgs popularity contest", "nixpkgs", None, (None,)),
    ]
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
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
