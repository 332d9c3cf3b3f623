// Running Nix: evaluating an image request with image.nix (once), realising
// the derivations that evaluation wrote, fetching a channel into the store,
// and reading the runtime closure graph of the results. Nix is found through
// PATH. NIX_TIMEOUT bounds evaluations and each builder; downloads are
// bounded by stalls, a whole build by the caller's deadline. Request data
// reaches Nix only as the JSON string argument of image.nix.
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
    std::string drv_path;       // the derivation that builds it, written by the evaluation
    std::string output = "out"; // which of its outputs out_path is
};

struct Evaluation {
    std::vector<ResolvedPackage> packages; // requested and found, in request order
    std::vector<ResolvedPackage> implicit; // cacert, iana-etc when present
    std::vector<std::string> missing;      // names with no such attribute
    std::vector<std::string> not_packages; // attributes that are not derivations
    bool system_applied = true;            // the set took our `system` argument

    // Output paths: requested packages first (in order), then implicit ones.
    std::vector<std::string> out_paths() const;
    // The same outputs as `DRV!OUTPUT`, what realise() builds.
    std::vector<std::string> derived_paths() const;
    bool has_attribute(std::string_view attr) const;
};

struct NixFailure {
    enum class Kind {
        failed,       // Nix said no: log_tail says why
        timed_out,    // a bound ran out: `limit` names it
        refused,      // the package set's configuration refuses `package` (unfree, insecure…)
        not_runnable, // Nix could not be run at all
        disk_full,    // a disk of the server (the store, a build directory) is full
        killed,       // a builder was killed with SIGKILL, as the kernel's OOM killer does
        no_process,   // Nix could not start a process (fork: out of processes or memory)
        network,      // a download failed in a way that may pass: the network, a 5xx, a 429
        stopped,      // stopped on request (request_stop: a command interrupted)
        no_builder,   // no builder here for a derivation's system (or features): the
                      // server's configuration or a remote builder that is down
    } kind = Kind::failed;
    std::string operation; // "evaluate", "build", "query closure"
    std::string log_tail;  // the last lines Nix printed on stderr (refused: the reason)
    std::string package{}; // the requested package whose evaluation failed, when known
    std::string limit{};   // timed_out: "NIX_TIMEOUT" (a builder, an evaluation) or
                           // "NIXERY_BUILD_TIMEOUT" (the whole build)
    std::chrono::seconds limit_seconds{0};
};

struct NixSettings {
    std::filesystem::path expression; // image.nix
    // NIX_TIMEOUT: bounds each builder (Nix's own `timeout`) and each
    // evaluation (wall clock), not downloads, which Nix stops when they stall
    // (its `stalled-download-timeout`).
    std::chrono::seconds timeout{60};
    // NIXERY_BUILD_TIMEOUT: a whole image build, from its start.
    std::chrono::seconds build_timeout{1800};
    // NIXERY_NIXPKGS_CONFIG: the nixpkgs `config` (a Nix file); empty for none.
    std::filesystem::path nixpkgs_config;
};

class Nix {
public:
    explicit Nix(NixSettings settings) : m_settings(std::move(settings)) {}

    // Evaluates the request once, in read-write mode: the derivations of the
    // packages found are in the store afterwards, and import-from-derivation
    // works. A requested package that throws, aborts or hits a missing
    // attribute is a failure naming it (refused: the configuration refuses
    // it); missing attributes and non-packages are results.
    Result<Evaluation, NixFailure> evaluate(const std::string& request) const;
    // Builds or substitutes exactly the outputs `evaluation` found, without
    // evaluating again; each becomes a GC root in `root_dir` until the caller
    // removes it. Each builder is bounded by NIX_TIMEOUT, the whole call by
    // what is left of NIXERY_BUILD_TIMEOUT since the build `started`,
    // downloads only by stalls.
    Result<void, NixFailure> realise(const Evaluation& evaluation,
                                     const std::filesystem::path& root_dir,
                                     std::chrono::steady_clock::time_point started) const;
    // Downloads and unpacks a tarball (a channel) into the store and makes it
    // a GC root at `root`; its store path. Bounded by stalls, and by `limit`.
    Result<std::string, NixFailure> fetch_tarball(const std::string& url,
                                                  const std::filesystem::path& root,
                                                  std::chrono::seconds limit) const;
    // Copies the directory `tree` into the store (named after it) and makes
    // it a GC root at `root`; its store path.
    Result<std::string, NixFailure> add_tree(const std::filesystem::path& tree,
                                             const std::filesystem::path& root) const;
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

// Nix's stderr as clients see it: no colours, and without image.nix's
// trace lines that mark which package is being evaluated.
std::string clean_nix_output(std::string_view text);

// The package (its name as requested, "xorg.xev") image.nix was evaluating
// when Nix stopped: the last `nixery-evaluating-package` trace in `stderr`.
// nullopt when there is none.
std::optional<std::string> package_being_evaluated(std::string_view stderr_text);

// Why a nixpkgs package set refuses a package ("Package ‘x-1.0’ has an
// unfree license (‘unfree’)"), from Nix's error: nixpkgs' check-meta
// message, in its wording before 2026 or since, without its file position
// and without its advice to the evaluating user (an image's user cannot
// export NIXPKGS_ALLOW_UNFREE). nullopt when the error is not such a refusal.
std::optional<std::string> refusal_reason(std::string_view stderr_text);

// Whether a realise failed because a derivation the evaluation wrote was
// gone: `nix-instantiate --eval --read-write-mode` roots nothing, so a
// garbage collection between it and nix-store --realise may delete them.
bool derivation_lost(const NixFailure& failure);

// What the last lines Nix printed (clean_nix_output) say a failed run met
// beyond the image itself: a full disk, a builder killed with SIGKILL, a
// download that failed on the network (Nix's own downloads, or a fetcher's
// curl or git), or a daemon it cannot reach; `failed` when none of these.
// A download the server refused with a 4xx other than 408 and 429 (a
// source that is gone) is the image's failure. Pure.
NixFailure::Kind failure_kind_of(std::string_view log_tail);

// What image.nix's `evaluate` printed (nix-instantiate --json) for
// `request` (request_json), as an Evaluation; an error says what is wrong
// with the output. Pure.
Result<Evaluation> parse_evaluation(std::string_view out, std::string_view request);

// Parses the output of `nix-store --dump-db PATHS…` (the validity
// registration format: path, hash, NAR size, deriver, count, references).
Result<std::vector<StorePathInfo>> parse_validity_registration(std::string_view text);

} // namespace nixery
