// From an image name and tag to a manifest: resolve the source, reuse what
// the cache knows, otherwise evaluate with Nix, realise, group the closure
// into layers, pack the layers nobody packed before, and record it all.
//
// Concurrency: one build per image key and one packing per layer key at a
// time across every thread and process of the instance (named locks); the
// others wait and then find the result in the cache. Failures are remembered
// briefly so a client's retry does not start the same failing build again.
#pragma once

#include "builder/gc_lock.hpp"
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

class Builder {
public:
    explicit Builder(BuildServices services) : m_s(services) {}

    // The manifest for `image` at `tag`, building the image if needed.
    // Errors are what the client should see.
    Result<ServedManifest, RegistryError> manifest(const Image& image, std::string_view tag,
                                                   ManifestFormat format);

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
    Result<Outcome, RegistryError> build(const Image& image, const PreparedSource& prepared,
                                         std::int64_t build_id);
    Result<LayerDescriptor, RegistryError> ensure_layer(const std::vector<std::string>& paths,
                                                        bool top, LayerCompression compression,
                                                        Outcome& outcome);
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
