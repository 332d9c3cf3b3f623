// What the commands that build images in their own process (`prebuild`,
// `build`) share: the instance the environment configures, opened as a
// worker of its `serve` opens it (the same database, storage, locks,
// popularity data and package source, so they reuse and fill its build
// cache), and an image by name and tag through the builder's steps for a
// manifest request by tag. No nginx, no pool: a build another process of
// the instance is running is waited for through the named image lock
// (builder/builder.cpp), not through the pool's job board.
#pragma once

#include "builder/build_runner.hpp"
#include "builder/builder.hpp"
#include "config.hpp"
#include "util/lock.hpp"

#include <memory>
#include <string_view>

namespace nixery {

class LocalBuilder {
public:
    // Reads the environment as `serve` does; errors name what is wrong
    // (a missing STORAGE_PATH, an unwritable state directory, ...).
    static Result<std::unique_ptr<LocalBuilder>> open();

    const Config& config() const { return m_config; }
    StorageBackend& storage() { return *m_storage; }

    // The document the registry serves for `name`:`tag` to a client whose
    // Accept gives `choice` (its body, media type and digest: a manifest,
    // or an index of NIXERY_PLATFORMS), building the images first when the
    // cache has none. `name` and `tag` must be valid (core/reference.hpp).
    // A failure is the registry error a pull would get.
    Result<ServedManifest, Failure> image(std::string_view name, std::string_view tag,
                                          const ManifestChoice& choice);

private:
    LocalBuilder(Config config, std::unique_ptr<StorageBackend> storage, LockTable locks,
                 Popularity popularity, Metrics metrics);

    Config m_config;
    std::unique_ptr<StorageBackend> m_storage;
    LockTable m_locks;
    Popularity m_popularity;
    Metrics m_metrics;
    std::unique_ptr<BuilderParts> m_parts; // uses the above
};

} // namespace nixery
