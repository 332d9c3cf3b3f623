// From an image name and tag to a manifest: resolve the source, reuse what
// the cache knows, otherwise (as a job, builder/jobs.hpp) evaluate with Nix,
// realise, group the closure into layers, pack the layers nobody packed
// before, and record it all. This file orchestrates those steps; the parts
// live beside it: failure memory (failure_memory), the gc-lock protocol
// (gc_lock), Nix's errors in words (nix_errors), GC roots (gc_roots),
// lookups across local and shared records (lookup), packing (packing), uses
// for gc (usage).
//
// Concurrency: one build per image key at a time across every thread and
// process of the instance (the job board, and a named lock), one packing per
// layer key (named locks); the others wait and then find the result in the
// cache. Failures are remembered briefly so a client's retry does not start
// the same failing build again.
#pragma once

#include "builder/gc_lock.hpp"
#include "builder/gc_roots.hpp"
#include "builder/jobs.hpp"
#include "builder/packing.hpp"
#include "cache/build_cache.hpp"
#include "config.hpp"
#include "core/closure_graph.hpp"
#include "core/failure.hpp"
#include "core/image.hpp"
#include "core/manifest.hpp"
#include "core/popularity.hpp"
#include "core/provenance.hpp"
#include "metrics/metrics.hpp"
#include "nix/nix.hpp"
#include "nix/source.hpp"
#include "storage/backend.hpp"
#include "util/lock.hpp"

#include <chrono>
#include <string>

namespace nixery {

// What a worker thread hands the builder; everything is owned elsewhere.
struct BuildServices {
    const Config& config;
    const Popularity& popularity;
    PackageSource& source;
    StorageBackend& storage;
    BuildCache& cache;
    const LockTable& locks;
    const Nix& nix;
    Metrics& metrics;
};

struct ServedManifest {
    std::string body;
    std::string media_type;
    std::string digest;
};

// `failure` of the image of `arch`, for a request of several platforms: the
// message names the platform, so the client knows which one failed.
Failure platform_failure(Failure failure, Arch arch);

class Builder {
public:
    explicit Builder(BuildServices services);

    // Which image `image` at `tag` is: its key, from the package source's
    // revision for the tag.
    struct Resolved {
        std::string key;
        Pinning pinning = Pinning::pinned;
    };
    // One platform's image of a request (core/platform.hpp,
    // platform_images()): named as its job is.
    struct Target {
        Image image;
        Resolved resolved;
    };
    // The images `image` at `tag` means to a client that chose `choice`,
    // with their keys from one resolution of the tag: one per platform of
    // NIXERY_PLATFORMS when it reads an index, else the default platform's
    // only (just `image` for an "arm64/" name).
    Result<std::vector<Target>, Failure> resolve(const Image& image, std::string_view tag,
                                                 const ManifestChoice& choice);

    // `one` (a target's image) at the revision `tag` names now: after a
    // job ended, the key it built under if the source moved since.
    Result<Resolved, Failure> resolve_again(const Image& one, std::string_view tag);

    // The image if it was built (and is still fresh), nullopt if it needs a
    // build; a build that failed recently is its error. Records the use (gc
    // keeps what is used).
    Result<std::optional<ImageRecord>, Failure> find(const Resolved& image);

    // The image a job has just built for `image` (or its error, remembered),
    // whatever NIXERY_SOURCE_TTL says; nullopt if there is neither. Reads
    // only: the build recorded the image's use.
    Result<std::optional<ImageRecord>, Failure> built(const Resolved& image);

    // As built(), for the job of `target` that `tag` queued: when the job
    // found the tag moved (a branch pushed while it waited) and built the
    // revision the tag names now, that image answers the tag.
    Result<std::optional<ImageRecord>, Failure> built_at(const Target& target,
                                                         std::string_view tag);

    // The document that answers a manifest request by tag for `name`, from
    // its targets' images (`found`, one per target, in their order), and
    // records `tag` for tags/list. One image: its manifest in
    // choice.format. Several (resolve() gives several only to a client
    // that reads an index): their index (builder/platforms.cpp), stored
    // like a manifest so it is served by digest too.
    struct Found {
        Arch arch = Arch::amd64;
        ImageRecord record;
    };
    Result<ServedManifest, Failure> serve(const std::vector<Found>& found, std::string_view name,
                                          std::string_view tag, const ManifestChoice& choice);

    // Builds the image `key` names (from `image` at `tag`) and records it, or
    // remembers why it failed, and logs the outcome. Run as a job: nobody
    // waits on the caller; a failure is also returned for the job's
    // waiters (JobBoard::finish), without its internal text.
    JobResult build_job(const JobSpec& job);

private:
    struct Outcome {
        std::string closure_key;
        ImageRecord image;
        int layers_built = 0;
        int layers_reused = 0;
        std::uint64_t bytes_packed = 0;
    };

    // The steps of a build, in order: evaluate (Nix), reuse an image with
    // the same outputs, realise (Nix), group the closure into layers and
    // ensure each is packed, then record the image.
    Result<Outcome, Failure> build(const Image& image, const PreparedSource& prepared,
                                   std::int64_t build_id);
    // The one evaluation of a cold build: each package's derivation and output.
    Result<Evaluation, Failure> evaluate(const Image& image, const std::string& request);
    // Realises exactly the outputs `ev` found, rooted in `roots` (which must
    // live until the image is recorded: packing reads them), within what is
    // left of NIXERY_BUILD_TIMEOUT since `started`, and returns their closure.
    Result<ClosureGraph, Failure> realise(const Image& image, const Evaluation& ev,
                                          const std::string& request, const GcRoots& roots,
                                          std::chrono::steady_clock::time_point started);
    // The index of `found` in `format` (builder/platforms.cpp), stored and
    // recorded with its children for gc.
    Result<ServedManifest, Failure> serve_index(const std::vector<Found>& found,
                                                std::string_view name, ManifestFormat format);

    // The layers of an image: gzip ones for Docker-format manifests, those
    // compressed as configured for OCI-format ones (equal for gzip), and
    // each layer's store paths (none for the top layer).
    struct Layers {
        std::vector<LayerDescriptor> gzip;
        std::vector<LayerDescriptor> oci;
        std::vector<std::vector<std::string>> paths;
    };

    // The layer of `paths` in each of `compressions`, in their order: the
    // forms stored already reused, the others packed together in one walk
    // of the files.
    Result<std::vector<LayerDescriptor>, Failure>
    ensure_layer(const std::vector<std::string>& paths, LayerKind kind,
                 const std::vector<LayerCompression>& compressions, Outcome& outcome);
    // A layer packed before (here or by an instance sharing the storage)
    // whose blob is still stored, taken over into this database; nullopt
    // when it must be packed.
    Result<std::optional<LayerRecord>> reusable_layer(const std::string& key);
    Result<void, Failure> record_image(const Image& image, bool bash, const Layers& layers,
                                       const ImageProvenance& provenance, const ClosureGraph& graph,
                                       Outcome& out);

    // The image evaluated from `image_key` if that evaluation is still
    // fresh, with its use recorded (gc keeps what is used).
    Result<std::optional<ImageRecord>, Failure> use_evaluated(std::string_view image_key,
                                                              Pinning pinning);
    // When an evaluation of `content_key` (PreparedSource::content) led to
    // an image still there: its use recorded, and it is recorded as
    // `image_key`'s evaluation too. False when it must be evaluated.
    Result<bool, Failure> reuse_evaluation(std::string_view content_key,
                                           std::string_view image_key);
    // The image with outputs `closure_key`, taken over from a shared record
    // if need be, with its use recorded; nullopt also when another
    // instance's gc collected it since this one last used it.
    Result<std::optional<ImageRecord>, Failure> use_image(std::string_view closure_key);

    // The shared k_gc_lock, for as long as the result lives.
    Result<NamedLock, Failure> hold_off_gc() const;
    // How long this request or job may still wait for another build or
    // packing: until a minute before nginx gives up on a request
    // (Config::request_timeout).
    std::chrono::milliseconds time_left() const;

    // The key of `image` built from the source at `revision`.
    std::string key_of(const Image& image, std::string_view revision) const;

    BuildServices m_s;
    std::chrono::steady_clock::time_point m_deadline;
    std::string m_layering; // layering_identity() of the configuration
};

} // namespace nixery
