// Package sources: where the package set comes from and what an image tag
// means for it (../shared/seed/nixery-README.txt: a channel, a git
// repository whose refs are image tags, or a local path).
//
// resolve() is cheap and runs for every manifest request: it turns a tag
// into a revision (what the package set is right now) and says whether that
// revision pins the content for good. Only when the cache has no answer does
// the builder call prepare(), which may fetch, and yields the "source"
// object image.nix evaluates.
#pragma once

#include "config.hpp"
#include "core/routes.hpp"
#include "nix/nix.hpp"
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
    std::string revision; // equal revisions mean the same package set
    Pinning pinning = Pinning::moving;
};

class PackageSource {
public:
    virtual ~PackageSource() = default;
    // What `tag` refers to now. Errors are what the client should see: an
    // unknown ref is a 404, an unreachable source a 503.
    virtual Result<ResolvedSource, RegistryError> resolve(std::string_view tag) = 0;
    // Makes the revision available to Nix; the JSON "source" object for
    // image.nix. Same error conventions as resolve().
    virtual Result<std::string, RegistryError> prepare(const ResolvedSource& source) = 0;
};

// How Nix runs for the configured source.
NixSettings nix_settings(const Config& config);

// The source the configuration names; `nix` is used to fetch channels.
std::unique_ptr<PackageSource> make_source(const Config& config, const Nix& nix);

// The error for a source that cannot be reached (503, says which source).
RegistryError source_unavailable(std::string what, std::string_view cause);

// True for 40 lowercase hex digits: a git commit.
bool is_commit_hash(std::string_view text);

std::unique_ptr<PackageSource> make_path_source(std::string path);
std::unique_ptr<PackageSource> make_git_source(const Config& config);
std::unique_ptr<PackageSource> make_channel_source(const Config& config, const Nix& nix);

} // namespace nixery
