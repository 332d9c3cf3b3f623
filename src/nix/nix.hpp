// Running Nix: evaluating an image request with image.nix, realising its
// packages, and reading the runtime closure graph of the results. Nix is
// found through PATH and every invocation is bounded by NIX_TIMEOUT. Request
// data reaches Nix only as the JSON string argument of image.nix.
#pragma once

#include "core/closure_graph.hpp"
#include "core/image.hpp"
#include "util/result.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace nixery {

struct NixRequest {
    std::string source_json; // the "source" object image.nix expects
    Arch arch = Arch::amd64;
    std::vector<std::string> packages; // names as in the image name
};

// The JSON string passed to image.nix.
std::string request_json(const NixRequest& request);

struct ResolvedPackage {
    std::string name; // as requested
    std::vector<std::string> attr_path;
    std::string out_path;
};

struct Evaluation {
    std::vector<ResolvedPackage> packages; // requested and found, in request order
    std::vector<ResolvedPackage> implicit; // cacert, iana-etc when present
    std::vector<std::string> missing;      // names with no such attribute
    std::vector<std::string> not_packages; // attributes that are not derivations
    std::vector<std::string> refused;      // derivations that throw when evaluated
    bool system_applied = true;            // the set took our `system` argument

    // Output paths: requested packages first (in order), then implicit ones.
    std::vector<std::string> out_paths() const;
    bool has_attribute(std::string_view attr) const;
};

struct NixFailure {
    enum class Kind { failed, timed_out, not_runnable } kind = Kind::failed;
    std::string operation; // "evaluate", "build", "query closure"
    std::string log_tail;  // the last lines Nix printed on stderr
};

struct NixSettings {
    std::filesystem::path expression; // image.nix
    std::chrono::seconds timeout{60};
    // For a channel source (a tarball): how long Nix may reuse the download
    // without asking the server again, NIXERY_SOURCE_TTL, so that a
    // re-evaluation sees a moved channel. Unset for other sources: a Nix
    // daemon (2.14 and newer) answers every option of a user it does not
    // trust with a warning.
    std::optional<std::chrono::seconds> tarball_ttl;
};

class Nix {
public:
    explicit Nix(NixSettings settings) : m_settings(std::move(settings)) {}

    Result<Evaluation, NixFailure> evaluate(const std::string& request) const;
    // Nix's own error for a request whose packages refuse to evaluate.
    std::string explain(const std::string& request) const;
    // Builds every found package; `out_link` becomes a GC root for the results
    // until the caller removes it.
    Result<void, NixFailure> realise(const std::string& request,
                                     const std::filesystem::path& out_link) const;
    // The store path of the request's source (fetching it if needed).
    Result<std::string, NixFailure> source_path(const std::string& request) const;
    // Closure of `roots` with NAR sizes and references.
    Result<ClosureGraph, NixFailure> closure(const std::vector<std::string>& roots) const;

    // For tools: `attr` of the expression `file` (taking the same request)
    // evaluated strictly, as JSON text.
    Result<std::string, NixFailure> eval_json(const std::filesystem::path& file, const char* attr,
                                              const std::string& request) const;
    // Builds `attr` of `file`, continuing past failures; only each builder is
    // bounded by the timeout, not the whole run. Success means it ran.
    Result<void, NixFailure> build_keep_going(const std::filesystem::path& file, const char* attr,
                                              const std::string& request) const;
    // The paths among `paths` that are not valid in the store.
    Result<std::vector<std::string>, NixFailure>
    invalid_paths(const std::vector<std::string>& paths) const;

    std::chrono::seconds timeout() const { return m_settings.timeout; }

private:
    NixSettings m_settings;
};

// Runs `command` (a Nix command, through PATH) with `paths` appended, in
// calls of at most k_paths_per_call paths, far below the kernel's limit on
// the size of arguments (popcount passes every package of nixpkgs), and
// hands each call's output to `on_output`, in order.
inline constexpr std::size_t k_paths_per_call = 1000;
Result<void, NixFailure>
run_nix_on_paths(const std::vector<std::string>& command, const std::vector<std::string>& paths,
                 const std::string& operation, std::chrono::seconds timeout,
                 const std::function<Result<void, NixFailure>(const std::string&)>& on_output);

// The options every evaluation or build passes to Nix.
std::vector<std::string> nix_options(const NixSettings& settings);

// Nix's stderr as clients see it: no colours, and without the daemon's
// warning that it ignores our tarball-ttl (the evaluating client applies it
// itself, so the warning says nothing anyone should act on).
std::string clean_nix_output(std::string_view text);

// What image.nix's `evaluate` printed (nix-instantiate --json) for
// `request` (request_json), as an Evaluation; an error says what is wrong
// with the output. Pure.
Result<Evaluation> parse_evaluation(std::string_view out, std::string_view request);

// Parses the output of `nix-store --dump-db PATHS…` (the validity
// registration format: path, hash, NAR size, deriver, count, references).
Result<std::vector<StorePathInfo>> parse_validity_registration(std::string_view text);

} // namespace nixery
