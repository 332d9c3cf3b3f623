// Package sources: where the package set comes from and what an image tag
// means for it. A source resolves a tag to a revision (what the package set
// is right now) and says whether that revision pins the content for good, so
// the builder knows whether a cached image may be served without asking Nix.
#pragma once

#include "config.hpp"
#include "core/routes.hpp"
#include "util/result.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace nixery {

enum class Pinning {
    pinned, // the revision names immutable content (a commit)
    moving, // the same revision may hold other content later (a path, a channel name)
};

struct ResolvedSource {
    std::string nix_source; // the JSON "source" object for image.nix
    std::string revision;   // equal revisions mean the same package set
    Pinning pinning = Pinning::moving;
};

class PackageSource {
public:
    virtual ~PackageSource() = default;
    // What `tag` refers to now. Errors are what the client should see: an
    // unknown ref is a 404, an unreachable source a 503.
    virtual Result<ResolvedSource, RegistryError> resolve(std::string_view tag) = 0;
};

std::unique_ptr<PackageSource> make_source(const Config& config);

} // namespace nixery
