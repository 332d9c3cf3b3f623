// A git repository (NIXERY_PKGS_REPO) with a package set at its root. Image
// tags are git refs: "latest" is the repository's HEAD, 40 hex digits are a
// commit, anything else a tag or branch. A ref is resolved with
// `git ls-remote` on every request (cheap) and the commit it names is the
// revision, so the cache never serves a moved branch stale and never
// rebuilds an unchanged one. Commits are fetched into a bare mirror under
// the state directory with the machine's own git and SSH credentials, and
// Nix reads them from there (builtins.fetchGit on a local path needs none).

#include "nix/source.hpp"

#include "core/routes.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"

#include <filesystem>

namespace nixery {

namespace {

class GitSource final : public PackageSource {
public:
    explicit GitSource(const Config& config)
        : m_url(config.source_location), m_shown(log::without_userinfo(m_url)),
          m_timeout(config.nix_timeout),
          m_mirror(config.state_dir / "git" / (sha256_hex(m_url).substr(0, 16) + ".git")),
          m_locks(config.lock_file()), m_refs_ttl(config.git_refs_ttl) {}

    Result<ResolvedSource, RegistryError> resolve(std::string_view tag) override {
        if (is_commit_hash(tag)) {
            return ResolvedSource{std::string(tag), Pinning::pinned};
        }
        const std::string t(tag);
        TRY_ASSIGN(const auto listing, refs());
        // A peeled annotated tag names the commit; tags win over branches, as
        // in git's own lookup order.
        const std::vector<std::string> preference =
            tag == "latest" ? std::vector<std::string>{"HEAD"}
                            : std::vector<std::string>{"refs/tags/" + t + "^{}", "refs/tags/" + t,
                                                       "refs/heads/" + t};
        const auto lines = split_nonempty(listing);
        for (const auto& wanted : preference) {
            for (const auto line : lines) {
                const auto tab = line.find('\t');
                if (tab != std::string_view::npos && line.substr(tab + 1) == wanted &&
                    is_commit_hash(line.substr(0, tab))) {
                    return ResolvedSource{std::string(line.substr(0, tab)), Pinning::pinned};
                }
            }
        }
        return unexpected(
            manifest_unknown("the git repository " + m_shown + " has no branch or tag \"" + t +
                                 "\" (use a branch, a tag, a 40-digit commit, or latest)",
                             json_string(t)));
    }

    Result<PreparedSource, RegistryError> prepare(const ResolvedSource& source) override {
        const auto& commit = source.revision;
        auto lock = m_locks.acquire(
            "git:" + m_url, std::chrono::duration_cast<std::chrono::milliseconds>(m_timeout * 2));
        if (!lock) {
            log::error("locking the git mirror failed", {{"error", lock.error().message}});
            return unexpected(internal_error("fetching the git repository failed on the server"));
        }
        if (!*lock) {
            return unexpected(source_unavailable("git repository " + m_shown,
                                                 "another fetch is taking too long"));
        }
        if (!std::filesystem::exists(m_mirror / "HEAD")) {
            if (auto made = make_private_dir(m_mirror.parent_path()); !made) {
                log::error("creating the git mirror failed", {{"error", made.error().message}});
                return unexpected(
                    internal_error("fetching the git repository failed on the server"));
            }
            TRY(git({"git", "init", "--quiet", "--bare", m_mirror.string()}, "create a mirror of"));
        }
        if (!has_commit(commit)) {
            // A commit no ref names, asked for again soon after a fetch: a
            // made-up one, most likely; not worth another fetch upstream.
            const auto fetched = m_mirror / "nixery-fetched";
            const auto listed = read_file(refs_file());
            if (fresh(fetched) && !(listed && listed->find(commit) != std::string::npos)) {
                return unexpected(
                    manifest_unknown("the git repository " + m_shown + " has no commit " + commit,
                                     json_string(commit)));
            }
            (void)write_file_atomic(m_mirror, fetched, {});
            TRY(git({"git", "-C", m_mirror.string(), "fetch", "--quiet", "--prune", "--force", "--",
                     m_url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
                    "fetch"));
            if (!has_commit(commit)) {
                return unexpected(
                    manifest_unknown("the git repository " + m_shown + " has no commit " + commit,
                                     json_string(commit)));
            }
        }
        return PreparedSource{R"({"type":"git","url":)" + json_string(m_mirror.string()) +
                                  R"(,"rev":)" + json_string(commit) + "}",
                              {"git", url_without_credentials(m_url), {}, commit, {}}};
    }

private:
    // Beside the mirror, shared by every thread and process of the instance.
    std::filesystem::path refs_file() const { return m_mirror.string() + ".refs"; }

    // Whether `file` was written within the last NIXERY_GIT_REFS_TTL.
    bool fresh(const std::filesystem::path& file) const {
        std::error_code ec;
        const auto written = std::filesystem::last_write_time(file, ec);
        return !ec && std::filesystem::file_time_type::clock::now() - written < m_refs_ttl;
    }

    // HEAD, branches and tags of the repository: from one ls-remote per
    // NIXERY_GIT_REFS_TTL, so made-up tags are answered without asking the
    // upstream each time. (Not refs/pull/* and the like: GitHub lists
    // hundreds of thousands.)
    Result<std::string, RegistryError> refs() {
        if (fresh(refs_file())) {
            if (auto cached = read_file(refs_file()); cached) {
                return std::move(*cached);
            }
        }
        TRY_ASSIGN(auto listing,
                   git({"git", "ls-remote", "--", m_url, "HEAD", "refs/heads/*", "refs/tags/*"},
                       "list refs of"));
        if (m_refs_ttl.count() > 0) {
            if (auto made = make_private_dir(m_mirror.parent_path()); made) {
                (void)write_file_atomic(m_mirror.parent_path(), refs_file(), listing);
            }
        }
        return listing;
    }

    bool has_commit(const std::string& commit) {
        ProcessSpec spec;
        spec.argv = {"git", "-C", m_mirror.string(), "cat-file", "-e", commit + "^{commit}"};
        spec.timeout = m_timeout;
        const auto run = run_process(spec);
        return run && run->ok();
    }

    Result<std::string, RegistryError> git(std::vector<std::string> argv, std::string_view what) {
        ProcessSpec spec;
        // Never wait for a password or a host-key question nobody will
        // answer. The operator's GIT_SSH_COMMAND, inherited, overrides
        // core.sshCommand.
        argv.insert(argv.begin() + 1, {"-c", "core.sshCommand=ssh -o BatchMode=yes"});
        spec.argv = std::move(argv);
        spec.timeout = m_timeout;
        spec.env = {"GIT_TERMINAL_PROMPT=0"};
        const auto run = run_process(spec);
        if (!run) {
            return unexpected(source_unavailable("git repository " + m_shown,
                                                 log::scrub_userinfo(run.error().message, m_url)));
        }
        if (!run->ok()) {
            auto cause = std::string(what) + " it failed (" + run->describe_exit(m_timeout) + ")";
            // git may quote the URL it was given, credentials and all.
            const auto tail = log::scrub_userinfo(tail_lines(run->err_tail, 5), m_url);
            if (!tail.empty()) {
                cause += ": " + tail;
            }
            return unexpected(source_unavailable("git repository " + m_shown, cause));
        }
        return run->out;
    }

    std::string m_url;   // as configured: git needs its credentials
    std::string m_shown; // without them: for messages people see
    std::chrono::seconds m_timeout;
    std::filesystem::path m_mirror;
    LockTable m_locks;
    std::chrono::seconds m_refs_ttl;
};

} // namespace

std::unique_ptr<PackageSource> make_git_source(const Config& config) {
    return std::make_unique<GitSource>(config);
}

} // namespace nixery
