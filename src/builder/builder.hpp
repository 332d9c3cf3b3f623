// From an image name and tag to a manifest: resolve the source, reuse what
// the cache knows, otherwise (as a job, builder/jobs.hpp) evaluate with Nix,
// realise, group the closure into layers, pack the layers nobody packed
// before, and record it all.
//
// Concurrency: one build per image key at a time across every thread and
// process of the instance (the job board), one packing per layer key (named
// locks); the others wait and then find the result in the cache. Failures
// are remembered briefly so a client's retry does not start the same failing
// build again.
#pragma once

#include "builder/jobs.hpp"
#include "cache/build_cache.hpp"
#include "config.hpp"
#include "core/image.hpp"
#include "core/manifest.hpp"
#include "core/popularity.hpp"
#include "core/routes.hpp"
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

// How long a failed build is answered from memory.
inline constexpr std::chrono::seconds k_failure_memory{30};

// The named lock that keeps `nixery gc` from deleting what a build is about
// to reference. A builder holds it shared from the moment it looks a layer,
// blob or image up in the cache until the image that references them is
// recorded (or, for a cache hit, its last use is): the window in which a
// blob is in use but not yet referenced by any recorded image. gc holds it
// exclusively while it decides and deletes, so it never sees such a window
// half done. Nix runs outside it: gc waits for packing, not for builds.
inline constexpr std::string_view k_gc_lock = "gc";

class Builder {
public:
    explicit Builder(BuildServices services) : m_s(services) {}

    // Which image `image` at `tag` is: its key, from the package source's
    // revision for the tag.
    struct Resolved {
        std::string key;
        Pinning pinning = Pinning::pinned;
    };
    Result<Resolved, RegistryError> resolve(const Image& image, std::string_view tag);

    // The image if it was built (and is still fresh), nullopt if it needs a
    // build; a build that failed recently is its error. Records the use (gc
    // keeps what is used).
    Result<std::optional<ImageRecord>, RegistryError> find(const Resolved& image);

    // The manifest of a found image in `format`; records `tag` for tags/list.
    ServedManifest serve(const ImageRecord& record, std::string_view image, std::string_view tag,
                         ManifestFormat format);

    // Builds the image `key` names (from `image` at `tag`) and records it, or
    // remembers why it failed. Run as a job: nobody waits on the caller.
    JobOutcome build_job(const JobSpec& job);

private:
    struct Outcome {
        std::string closure_key;
        ImageRecord image;
        int layers_built = 0;
        int layers_reused = 0;
        std::uint64_t bytes_packed = 0;
    };

    // The shared k_gc_lock, for as long as the result lives.
    Result<NamedLock, RegistryError> hold_off_gc(std::string_view image);

    Result<std::optional<ImageRecord>, RegistryError> cached(std::string_view image_key,
                                                             Pinning pinning, std::int64_t now);
    Result<Outcome, RegistryError> build(const Image& image, const std::string& nix_source,
                                         std::int64_t build_id);
    Result<LayerDescriptor, RegistryError> ensure_layer(const std::vector<std::string>& paths,
                                                        bool top, Outcome& outcome);
    Result<std::optional<ImageRecord>, RegistryError> find_image(std::string_view closure_key);
    // find_image() and, when found, a use of it (builder/usage.hpp); nullopt
    // also when another instance's gc collected it since this one last used it.
    Result<std::optional<ImageRecord>, RegistryError> use_image(std::string_view closure_key,
                                                                std::int64_t now);
    Result<std::string, RegistryError> store_document(std::string_view data,
                                                      std::string_view media_type);

    // How long this request may still wait for another build or packing:
    // until a minute before nginx gives up on it (Config::request_timeout).
    std::chrono::milliseconds time_left() const;

    BuildServices m_s;
    std::chrono::steady_clock::time_point m_deadline;
};

} // namespace nixery
