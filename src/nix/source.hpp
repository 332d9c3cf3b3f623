// Package sources: where the package set comes from and what an image tag
// means for it (../shared/seed/nixery-README.txt: a channel, a git
// repository whose refs are image tags, or a local path).
//
// resolve() is cheap and runs for every manifest request: it turns a tag
// into a revision (what the package set is right now) and says whether that
// revision pins the content for good. Only when the cache has no answer does
// the builder call prepare(), which may fetch, and yields the "source"
// object image.nix evaluates and what the package set is, for the image's
// labels (core/provenance.hpp).
#pragma once

#include "config.hpp"
#include "core/failure.hpp"
#include "core/provenance.hpp"
#include "nix/nix.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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

struct PreparedSource {
    std::string nix_source;      // the JSON "source" object for image.nix
    SourceProvenance provenance; // what it is, from the same resolution and fetch
    // A revision naming exactly the content prepared, for good (a store
    // path), when a moving revision's content is immutable once fetched:
    // evaluations are reused under it after the moving one expires. Empty
    // when the content can change in place (a directory).
    std::string content;
};

class PackageSource {
public:
    virtual ~PackageSource() = default;
    // What `tag` refers to now. Failures say what the client should learn
    // (core/failure.hpp): an unknown ref is `unknown`, an unreachable source
    // `unavailable`, a fetch under way `busy`.
    virtual Result<ResolvedSource, Failure> resolve(std::string_view tag) = 0;
    // Makes the revision available to Nix and says what it is (a path's
    // content hash, a channel's revision and hash, a git commit). Same error
    // conventions as resolve().
    virtual Result<PreparedSource, Failure> prepare(const ResolvedSource& source) = 0;
};

// How Nix runs for the configured source.
NixSettings nix_settings(const Config& config);

// The source the configuration names; `nix` is used to fetch channels.
std::unique_ptr<PackageSource> make_source(const Config& config, const Nix& nix);

// True for 40 lowercase hex digits: a git commit.
bool is_commit_hash(std::string_view text);

// The NAR hash of a directory (nix-hash) or of a valid store path (the
// store's record, nothing read), in SRI form "sha256-…". Failures are
// source_unavailable naming `what`.
Result<std::string, Failure>
directory_nar_hash(const std::string& path, std::chrono::seconds timeout, const std::string& what);
Result<std::string, Failure>
store_path_nar_hash(const std::string& path, std::chrono::seconds timeout, const std::string& what);
// "sha256:<Nix base32>", "sha256:<hex>" or SRI as SRI; empty when it is none.
std::string sri_hash(std::string_view nix_hash);

// The start page's "current revision": what the last build of a "latest"
// image came from, recorded in the state directory, and when (the file's
// time). Recording failures are logged, never a build's failure; nullopt
// when nothing was recorded (or it cannot be read).
struct CurrentSource {
    SourceProvenance provenance;
    std::int64_t recorded_at = 0;
};
void record_current_source(const Config& config, const SourceProvenance& provenance);
std::optional<CurrentSource> current_source(const Config& config);

std::unique_ptr<PackageSource> make_path_source(std::string path, std::chrono::seconds timeout);
std::unique_ptr<PackageSource> make_git_source(const Config& config);
// Waits until the git fetches this process runs in the background (a git
// source's, which outlive the request that started them) have ended, or
// `until` passed: false when some still run.
bool wait_for_git_fetches(std::chrono::steady_clock::time_point until);
std::unique_ptr<PackageSource> make_channel_source(const Config& config, const Nix& nix);

} // namespace nixery
