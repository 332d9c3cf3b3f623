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
// Builders therefore hold the shared lock k_gc_lock (builder.hpp) from their
// first cache lookup until the image that references what they found is
// recorded; gc deletes only while holding that lock exclusively, and
// re-checks under it that a blob is still unreferenced. Either the build's
// lookups come after the deletion (it finds L missing and packs it again,
// reproducibly, with the same digest) or its image is recorded before gc
// looks (L is referenced and kept). Per-layer locks ("layer:<key>") alone
// would not do: a build that reuses a layer does not take its lock, and
// configs and manifests are blobs without one. gc deletes in batches and
// lets go of the lock between them, so a build waits for one batch at most,
// never for the whole collection; it never waits for a Nix build, because
// builders do not hold the lock while Nix runs.
//
// Staging files and GC roots have no lock: a file being written has a fresh
// modification time, so only files older than k_staging_grace are removed.
//
// Instances that share one bucket each know only their own images; gc keeps
// every blob that another instance's shared image record names.
#pragma once

#include "cache/db.hpp"
#include "config.hpp"
#include "storage/backend.hpp"
#include "util/lock.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

namespace nixery {

// Staging files and build GC roots older than this are leftovers of killed
// processes: a packer writes its staging file continuously, and a build's GC
// root lives no longer than the build.
inline constexpr std::chrono::hours k_staging_grace{1};

// Images served this recently are kept whatever --keep-days says: a client
// fetches the blobs after the manifest, and a large pull takes a while.
inline constexpr std::chrono::hours k_pull_grace{1};

struct GcOptions {
    // Images whose manifest was last served (or built) this many days ago or
    // earlier go, unless within k_pull_grace.
    int keep_days = 30;
    bool dry_run = false;
};

struct GcReport {
    int images = 0;      // images forgotten
    int images_kept = 0; // images used within the window
    int blobs = 0;
    std::uint64_t blob_bytes = 0;
    int staging_files = 0;
    std::uint64_t staging_bytes = 0;
    int records = 0;    // shared cache records removed
    int stale_rows = 0; // rows of blobs that were already missing from storage
    int gc_roots = 0;
};

struct GcServices {
    const Config& config;
    StorageBackend& storage;
    Db& db;
    const LockTable& locks;
};

// One line per thing deleted (or, with dry_run, that would be).
using GcOutput = std::function<void(std::string_view line)>;

// Collects once, as of `now` (Unix seconds). An error stops it where it was:
// what was deleted before stays deleted and consistent.
Result<GcReport> collect_garbage(const GcServices& services, const GcOptions& options,
                                 std::int64_t now, const GcOutput& say);

// "123456 bytes (120.6 KiB)".
std::string describe_bytes(std::uint64_t bytes);

} // namespace nixery
