// Garbage collection (`nixery gc`): deletes the blobs that no image served
// within the retention window references, the staging files and Nix GC roots
// that killed processes left behind, and the rows and shared cache records
// that describe what it deletes. Blobs are listed and removed through the
// StorageBackend interface only, so it works for every backend.
//
// It is safe while the service serves and builds. What must never happen is
// that a build in flight looks up (or packs) a layer, gc deletes that blob
// because no recorded image references it yet, and the build then records an
// image whose manifest names a blob that is gone:
//
//   builder:  lookup layer L ──────── pack others ─────── record image(L)
//   gc:                 list blobs, "L is unreferenced" ── delete L      ✗
//
// Builders therefore hold the shared lock k_gc_lock (builder/gc_lock.hpp) from their
// first cache lookup until the image that references what they found is
// recorded; gc deletes only while holding that lock exclusively, and
// re-checks under it that a blob is still unreferenced. Either the build's
// lookups come after the deletion (it finds L missing and packs it again,
// reproducibly, with the same digest) or its image is recorded before gc
// looks (L is referenced and kept). Per-layer locks ("layer:<key>") alone
// would not do: a build that reuses a layer does not take its lock, and
// configs and manifests are blobs without one. gc deletes in short holds of
// the lock (below), so a build waits for one hold at most, never for the
// whole collection; gc never waits for a Nix build, because builders do not
// hold the lock while Nix runs.
//
// Staging files and GC roots have no lock: a file being written has a fresh
// modification time, so only files older than k_staging_grace are removed.
//
// Instances sharing one bucket (or one STORAGE_PATH) each know only their
// own SQLite, and the lock above is per instance. What they share is in
// storage: each image's record (cache/images/<closure key>.json, written
// when it was built) and the markers every instance writes when it uses an
// image (cache/used/<manifest hex>, at most once a day, builder/usage.hpp).
// An image's last use, as gc judges it, is the latest of
//
//   its last use here (SQLite)     its record's modification time
//   each of its markers' modification times + k_shared_use_interval
//
// (a marker is only rewritten a day after the last one, so the use it
// stands for may be up to a day later). gc keeps every blob that an image
// used within the window references, whichever instance built or used it,
// and deletes the records and markers of the images it forgets. Another
// instance's build in flight is protected by age: no blob, record or marker
// younger than k_object_grace is deleted, so the blobs it uploaded before
// recording its image stay. A build that reuses an old layer rewrites the
// layer's record first (builder.cpp), which makes the layer young for gc;
// gc looks at the record's age again right before it deletes the blob.
// For layers, what remains is a window of one storage request: a build that
// rewrites the record and finds the blob between gc's last look and its
// deletion. Configs and manifests have no record: an image that another
// instance builds again while gc deletes it (unused for the whole window
// until then) can lose them, as the build does not upload a document it
// finds stored. That instance's daily check of what its images need
// (builder/usage.cpp) finds them gone and builds the image again.
//
// Under the exclusive lock gc works in holds of at most 256 deletions or
// about a second, whichever ends first, so a build on an object store (a
// request per deletion) waits for a few requests, not for the whole
// collection. In the first hold, before deleting anything, it reads the
// uses again (here, and the markers), so an image used since the plan is
// kept.
#pragma once

#include "cache/db.hpp"
#include "cache/gc_queries.hpp"
#include "config.hpp"
#include "storage/backend.hpp"
#include "util/lock.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace nixery {

// Staging files and build GC roots older than this are leftovers of killed
// processes: a packer writes its staging file continuously, and a build's GC
// root lives no longer than the build.
inline constexpr std::chrono::hours k_staging_grace{1};

// Images served this recently are kept whatever --keep-days says: a client
// fetches the blobs after the manifest, and a large pull takes a while.
inline constexpr std::chrono::hours k_pull_grace{1};

// Objects in storage younger than this (by the modification time the
// backend lists) are never deleted: another instance's build in flight.
inline constexpr std::chrono::hours k_object_grace{1};

// Builds the start page's history keeps beyond the retention window.
inline constexpr int k_builds_kept = 100;

struct GcOptions {
    // Images whose manifest was last served (or built) this many days ago or
    // earlier go, unless within k_pull_grace.
    int keep_days = 30;
    bool dry_run = false;
};

struct GcReport {
    int images = 0;      // images forgotten (this instance's, or only records)
    int images_kept = 0; // images used within the window, by any instance
    int blobs = 0;
    std::uint64_t blob_bytes = 0;
    int young_blobs = 0; // unreferenced, but younger than k_object_grace
    int staging_files = 0;
    std::uint64_t staging_bytes = 0;
    int records = 0;    // shared cache records and use markers removed
    int stale_rows = 0; // rows of blobs that were already missing from storage
    int gc_roots = 0;
    int work_dirs = 0;          // git export work directories of killed workers
    int interrupted_builds = 0; // history rows ended as interrupted
    int builds = 0;             // build history rows pruned
    int tags = 0;               // tags no longer pulled
    int store_paths = 0;        // deleted from the Nix store (NIXERY_NIX_GC)
    int live_store_paths = 0;   // candidates Nix refused: still alive (rooted)
};

struct GcServices {
    const Config& config;
    StorageBackend& storage;
    Db& db;
    const LockTable* locks; // null for a dry run, which neither locks nor writes
};

// One line per thing deleted (or, with dry_run, that would be).
using GcOutput = std::function<void(std::string_view line)>;

// Collects once, as of `now` (Unix seconds). An error stops it where it was:
// what was deleted before stays deleted and consistent. A dry run only
// reads: the database, the storage listings and the state directory.
Result<GcReport> collect_garbage(const GcServices& services, const GcOptions& options,
                                 std::int64_t now, const GcOutput& say);

// Ends, as interrupted, the history rows of builds whose process died (a
// killed worker, a machine that restarted): rows still open whose image's
// build lock (image_build_lock) nobody holds. Otherwise the start page
// shows them building for ever, and gc keeps their GC roots while any
// process has their pid. Returns the rows it ended.
Result<std::vector<OpenBuild>> end_interrupted_builds(Db& db, const LockTable& locks, double now);

// "123456 bytes (120.6 KiB)".
std::string describe_bytes(std::uint64_t bytes);

} // namespace nixery
