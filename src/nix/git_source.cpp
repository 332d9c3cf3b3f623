// A git repository (NIXERY_PKGS_REPO) with a package set at its root. Image
// tags are git refs: "latest" is the repository's HEAD, 40 hex digits are a
// commit, anything else a tag or branch. A ref is resolved with
// `git ls-remote` on every request (cheap) and the commit it names is the
// revision, so the cache never serves a moved branch stale and never
// rebuilds an unchanged one.
//
// A commit is fetched into a bare mirror under the state directory with the
// machine's own git and SSH credentials, then exported once into the Nix
// store (GC-rooted, like a channel) and evaluated as a path: later builds of
// that commit touch neither the network nor git.
//
// Fetching runs in the background, to its end whatever happens to the
// request that started it, bounded only by stalls (no progress for
// k_fetch_stall): the first fetch of a repository as big as nixpkgs takes
// minutes. Requests wait for it a little (NIX_TIMEOUT at most), then get a
// 503 with Retry-After saying the repository is being fetched. A fetch asks
// for the one commit needed, one commit deep (a few tens of MB for nixpkgs,
// not its history), and falls back to all branches and tags when the
// server refuses to send a commit by its hash. Completed fetches stay in the
// mirror, so later ones transfer only what is new; one interrupted midway
// starts its pack again (git cannot resume a transfer).

#include "nix/source.hpp"

#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/subprocess.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <mutex>
#include <sys/stat.h>
#include <thread>

namespace nixery {

namespace {

// A fetch that shows no progress for this long is stopped, as Nix stops a
// stalled download (its stalled-download-timeout).
constexpr auto k_fetch_stall = std::chrono::minutes(5);
// How long a client is told to wait before asking again while a fetch runs.
constexpr int k_fetch_retry_after = 30;
// Exported commits kept as GC roots; older ones may be collected by Nix.
constexpr std::size_t k_kept_exports = 16;

// This process's background fetches, which its shutdown waits for
// (wait_for_git_fetches): a fetch cut short by the process's exit would
// start its transfer again next time, and leave no record of its end.
struct RunningFetches {
    std::mutex mutex;
    std::condition_variable ended;
    int count = 0;
};
RunningFetches& running_fetches() {
    static RunningFetches fetches;
    return fetches;
}

// Runs git with the machine's credentials, never waiting for a password or a
// host-key question nobody will answer. The operator's GIT_SSH_COMMAND,
// inherited, overrides core.sshCommand. A wall-clock `timeout`, or with
// zero, only a stall bound: git reports its progress (--progress) on stderr.
Result<ProcessResult> run_git(std::vector<std::string> argv, std::chrono::seconds timeout,
                              int keep_fd = -1) {
    ProcessSpec spec;
    // gc and maintenance that a fetch starts run within it, under the
    // fetch's lock, not detached beyond it (remove_stale_git_locks counts on
    // no git but ours running on the mirror).
    argv.insert(argv.begin() + 1, {"-c", "core.sshCommand=ssh -o BatchMode=yes", "-c",
                                   "gc.autoDetach=false", "-c", "maintenance.autoDetach=false"});
    spec.argv = std::move(argv);
    spec.timeout = timeout;
    if (timeout.count() == 0) {
        spec.stall_timeout = k_fetch_stall;
    }
    spec.env = {"GIT_TERMINAL_PROMPT=0"};
    spec.keep_fd = keep_fd;
    return run_process(spec);
}

// Why a git run failed, for people: credentials in the URL scrubbed.
std::string git_failure(const Result<ProcessResult>& run, std::string_view what,
                        std::chrono::seconds timeout, const std::string& url) {
    if (!run) {
        return log::scrub_userinfo(run.error().message, url);
    }
    const auto limit = run->stalled ? std::chrono::seconds(k_fetch_stall) : timeout;
    auto cause = std::string(what) + " it failed (" + run->describe_exit(limit) + ")";
    // git may quote the URL it was given, credentials and all.
    const auto tail = log::scrub_userinfo(tail_lines(run->err_tail, 5), url);
    if (!tail.empty()) {
        cause += ": " + tail;
    }
    return cause;
}

class GitSource final : public PackageSource {
public:
    explicit GitSource(const Config& config)
        : m_url(config.source_location), m_shown(log::without_userinfo(m_url)),
          m_timeout(config.nix_timeout),
          m_mirror(config.state_dir / "git" / (sha256_hex(m_url).substr(0, 16) + ".git")),
          m_exports(config.state_dir / "git" / (sha256_hex(m_url).substr(0, 16) + ".roots")),
          m_fetch_record(config.state_dir / "git" / (sha256_hex(m_url).substr(0, 16) + ".fetch")),
          m_locks(config.lock_file()), m_nix(nix_settings(config)),
          m_refs_ttl(config.git_refs_ttl) {}

    Result<ResolvedSource, Failure> resolve(std::string_view tag) override {
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
        return unexpected(unknown("the git repository " + m_shown + " has no branch or tag \"" + t +
                                      "\" (use a branch, a tag, a 40-digit commit, or latest)",
                                  json_string(t)));
    }

    Result<PreparedSource, Failure> prepare(const ResolvedSource& source) override {
        const auto& commit = source.revision;
        if (auto path = exported(commit)) {
            return prepared(commit, *path);
        }
        TRY(fetch(commit));
        // One export per commit at a time; whoever waited finds it done.
        auto lock =
            m_locks.acquire("git-export:" + m_url + "#" + commit,
                            std::chrono::duration_cast<std::chrono::milliseconds>(m_timeout * 2));
        if (!lock) {
            return unexpected(fault("fetching the git repository failed on the server",
                                    "locking the git mirror failed: " + lock.error().message));
        }
        if (!*lock) {
            return unexpected(
                source_unavailable("git repository " + m_shown,
                                   "another export of " + commit + " is taking too long"));
        }
        if (auto path = exported(commit)) {
            return prepared(commit, *path);
        }
        auto path = export_commit(commit);
        if (!path) {
            return unexpected(fault("exporting commit " + commit + " of the git repository " +
                                        m_shown + " into the Nix store failed",
                                    path.error().message));
        }
        return prepared(commit, *path);
    }

private:
    // The commit, exported to `path`, for image.nix; its provenance is the
    // repository and the commit.
    PreparedSource prepared(const std::string& commit, const std::string& path) const {
        return PreparedSource{R"({"type":"path","path":)" + json_string(path) + "}",
                              {"git", url_without_credentials(m_url), {}, commit, {}},
                              {}}; // the commit pins it already
    }

    // The store path `commit` was exported to, while it is still there.
    std::optional<std::string> exported(const std::string& commit) const {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(m_exports / commit, ec);
        if (ec || !std::filesystem::is_directory(target, ec)) {
            return std::nullopt;
        }
        return target.string();
    }

    // Beside the mirror, shared by every thread and process of the instance.
    std::filesystem::path refs_file() const { return m_mirror.string() + ".refs"; }

    // Whether `file` was written within the last NIXERY_GIT_REFS_TTL.
    bool fresh(const std::filesystem::path& file) const {
        std::error_code ec;
        const auto written = std::filesystem::last_write_time(file, ec);
        return !ec &&
               within_ttl(std::filesystem::file_time_type::clock::now() - written, m_refs_ttl);
    }

    // HEAD, branches and tags of the repository: from one ls-remote per
    // NIXERY_GIT_REFS_TTL, so made-up tags are answered without asking the
    // upstream each time. (Not refs/pull/* and the like: GitHub lists
    // hundreds of thousands.)
    Result<std::string, Failure> refs() {
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
        if (!std::filesystem::exists(m_mirror / "HEAD")) {
            return false;
        }
        ProcessSpec spec;
        spec.argv = {"git", "-C", m_mirror.string(), "cat-file", "-e", commit + "^{commit}"};
        spec.timeout = m_timeout;
        const auto run = run_process(spec);
        return run && run->ok();
    }

    // Makes `commit` present in the mirror: starts a background fetch when
    // none runs, and waits a while for it. Errors: 503 while it runs or when
    // the repository cannot be reached, 404 when it ends without the commit.
    Result<void, Failure> fetch(const std::string& commit) {
        if (has_commit(commit)) {
            return {};
        }
        // A commit no ref names, asked for again within NIXERY_GIT_REFS_TTL
        // of a fetch that ended: a made-up one, most likely; not worth
        // another fetch upstream.
        const auto listed = read_file(refs_file());
        if (!fetch_running() && fresh(m_fetch_record) &&
            !(listed && listed->find(commit) != std::string::npos)) {
            return unexpected(unknown("the git repository " + m_shown + " has no commit " + commit,
                                      json_string(commit)));
        }
        const auto began = unix_millis();
        const auto until = std::chrono::steady_clock::now() +
                           std::min<std::chrono::seconds>(m_timeout, std::chrono::seconds(30));
        TRY(start_fetch(commit));
        bool asked_again = false;
        for (;;) {
            const bool running = fetch_running();
            if (has_commit(commit)) {
                return {};
            }
            if (!running) {
                const auto last = last_fetch();
                // A fetch that started before this request may have missed
                // a commit pushed since: one more of our own.
                if ((!last || last->started < began) && !asked_again) {
                    asked_again = true;
                    TRY(start_fetch(commit));
                    continue;
                }
                if (last && !last->error.empty()) {
                    return unexpected(source_unavailable("git repository " + m_shown, last->error));
                }
                return unexpected(
                    unknown("the git repository " + m_shown + " has no commit " + commit,
                            json_string(commit)));
            }
            if (std::chrono::steady_clock::now() >= until) {
                log::info("git fetch still running", {{"repository", m_shown}});
                return unexpected(busy("the package source (git repository " + m_shown +
                                           ") is being fetched; its first fetch can take "
                                           "minutes: retry later",
                                       k_fetch_retry_after));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
    }

    bool fetch_running() const {
        auto lock = m_locks.try_acquire(fetch_lock_name());
        return lock && !*lock;
    }

    std::string fetch_lock_name() const { return "git-fetch:" + m_url; }

    // Starts a fetch of `commit` in a thread of its own unless one runs.
    Result<void, Failure> start_fetch(const std::string& commit) {
        auto lock = m_locks.try_acquire(fetch_lock_name());
        if (!lock) {
            return unexpected(
                fault("fetching the git repository failed on the server", lock.error().message));
        }
        if (!*lock) {
            return {}; // another thread or process is fetching
        }
        if (auto made = make_private_dir(m_mirror.parent_path()); !made) {
            return unexpected(
                fault("fetching the git repository failed on the server", made.error().message));
        }
        // The thread owns copies of everything it uses, and the lock.
        {
            const std::lock_guard<std::mutex> g(running_fetches().mutex);
            ++running_fetches().count;
        }
        std::thread([lock = std::move(**lock), url = m_url, shown = m_shown, mirror = m_mirror,
                     record = m_fetch_record, timeout = m_timeout, commit]() mutable {
            struct Counted {
                ~Counted() {
                    auto& f = running_fetches();
                    const std::lock_guard<std::mutex> g(f.mutex);
                    --f.count;
                    f.ended.notify_all();
                }
            } counted;
            const auto started = unix_millis();
            const auto error = fetch_into(mirror, url, commit, timeout, lock.fd());
            if (!error.empty()) {
                log::error("package source unavailable",
                           {{"source", "git repository " + shown}, {"error", error}});
            }
            const auto text = std::to_string(started) + "\n" + error;
            if (auto wrote = write_file_atomic(record.parent_path(), record, text); !wrote) {
                log::error("recording a git fetch failed", {{"error", wrote.error().message}});
            }
            (void)lock; // released here, when the thread ends
        }).detach();
        return {};
    }

    // The lock files of a git killed while it held them (SIGKILL: a worker
    // that died takes its git along, which cannot clean up then). Left,
    // `shallow.lock` fails every later one-commit fetch, and the ref locks
    // the updates of those refs. Called under the mirror's fetch lock, which
    // every git of a fetch holds too (its descriptor, inherited): none of
    // ours runs on the mirror then, not even one a killed worker left
    // (exports only read it, taking no locks).
    static void remove_stale_git_locks(const std::filesystem::path& mirror) {
        namespace fs = std::filesystem;
        std::vector<fs::path> stale;
        std::error_code ec;
        for (auto it = fs::directory_iterator(mirror, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            if (it->path().extension() == ".lock") {
                stale.push_back(it->path());
            }
        }
        for (auto it = fs::recursive_directory_iterator(mirror / "refs", ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (it->path().extension() == ".lock") {
                stale.push_back(it->path());
            }
        }
        for (const auto& p : stale) {
            std::error_code rm;
            fs::remove(p, rm);
            log::warn("removed a lock file a killed git left in the mirror",
                      {{"file", p.lexically_relative(mirror).string()}});
        }
    }

    // Fetches `commit` (and, when the server will not send it alone, every
    // branch and tag) into `mirror`. An empty result means git succeeded.
    static std::string fetch_into(const std::filesystem::path& mirror, const std::string& url,
                                  const std::string& commit, std::chrono::seconds timeout,
                                  int lock_fd) {
        if (!std::filesystem::exists(mirror / "HEAD")) {
            const auto init =
                run_git({"git", "init", "--quiet", "--bare", mirror.string()}, timeout, lock_fd);
            if (!init || !init->ok()) {
                return git_failure(init, "create a mirror of", timeout, url);
            }
        }
        remove_stale_git_locks(mirror);
        const std::chrono::seconds stall_only{0};
        const auto one = run_git(
            {"git", "-C", mirror.string(), "fetch", "--progress", "--depth=1", "--", url, commit},
            stall_only, lock_fd);
        if (one && one->ok()) {
            return {};
        }
        log::info("fetching one commit failed, fetching all branches and tags",
                  {{"error", git_failure(one, "fetch", stall_only, url)}});
        const auto all =
            run_git({"git", "-C", mirror.string(), "fetch", "--progress", "--prune", "--force",
                     "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
                    stall_only, lock_fd);
        if (all && all->ok()) {
            return {};
        }
        return git_failure(all, "fetch", stall_only, url);
    }

    struct FetchRecord {
        std::int64_t started = 0; // unix milliseconds
        std::string error;        // empty: git succeeded
    };

    std::optional<FetchRecord> last_fetch() const {
        const auto text = read_file(m_fetch_record);
        if (!text) {
            return std::nullopt;
        }
        const auto nl = text->find('\n');
        FetchRecord r;
        const auto started = parse_decimal(std::string_view(*text).substr(0, nl),
                                           std::numeric_limits<std::int64_t>::max());
        if (!started) {
            return std::nullopt;
        }
        r.started = static_cast<std::int64_t>(*started);
        r.error = nl == std::string::npos ? std::string() : text->substr(nl + 1);
        return r;
    }

    static std::int64_t unix_millis() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // Copies the commit's tree into the store and roots it; its store path.
    Result<std::string> export_commit(const std::string& commit) {
        TRY(make_private_dir(m_exports));
        std::string dir = (m_exports.parent_path() / "export-XXXXXX").string();
        if (mkdtemp(dir.data()) == nullptr) {
            return fail("mkdtemp \"" + dir + "\" failed: " + errno_text(errno));
        }
        struct RemoveDir {
            std::filesystem::path dir;
            ~RemoveDir() {
                std::error_code ec;
                std::filesystem::remove_all(dir, ec);
            }
        } remove_work{dir};
        const auto tree = remove_work.dir / "source"; // the store path's name, as fetchGit's
        TRY(make_dirs(tree));
        const auto tar = remove_work.dir / "source.tar";
        ProcessSpec archive;
        archive.argv = {"git",          "-C", m_mirror.string(), "archive",
                        "--format=tar", "-o", tar.string(),      commit};
        archive.timeout = m_timeout;
        TRY_ASSIGN(const auto archived, run_process(archive));
        if (!archived.ok()) {
            return fail("git archive " + commit + " failed (" + archived.describe_exit(m_timeout) +
                        "): " + tail_lines(archived.err_tail, 5));
        }
        ProcessSpec unpack;
        unpack.argv = {"tar", "-x", "-f", tar.string(), "-C", tree.string()};
        unpack.timeout = m_timeout;
        TRY_ASSIGN(const auto unpacked, run_process(unpack));
        if (!unpacked.ok()) {
            return fail("tar -x of " + commit + " failed (" + unpacked.describe_exit(m_timeout) +
                        "): " + tail_lines(unpacked.err_tail, 5));
        }
        auto path = m_nix.add_tree(tree, m_exports / commit);
        if (!path) {
            return fail("nix-store --add of " + commit + " failed: " + path.error().log_tail);
        }
        log::info("git commit exported", {{"commit", commit}, {"path", *path}});
        forget_old_exports(commit);
        return std::move(*path);
    }

    // Keeps the export of `made` and the k_kept_exports - 1 most recent
    // others rooted. (`made` by name: after the wall clock stepped back,
    // its root's time is older than theirs.)
    void forget_old_exports(const std::string& made) {
        std::vector<std::pair<std::time_t, std::filesystem::path>> roots;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(m_exports, ec)) {
            struct stat st {};
            if (entry.path().filename() != made && lstat(entry.path().c_str(), &st) == 0 &&
                S_ISLNK(st.st_mode)) {
                roots.emplace_back(st.st_mtime, entry.path());
            }
        }
        if (roots.size() < k_kept_exports) {
            return;
        }
        std::sort(roots.begin(), roots.end(), std::greater<>());
        for (std::size_t i = k_kept_exports - 1; i < roots.size(); ++i) {
            std::filesystem::remove(roots[i].second, ec);
        }
    }

    Result<std::string, Failure> git(std::vector<std::string> argv, std::string_view what) {
        const auto run = run_git(std::move(argv), m_timeout);
        if (!run || !run->ok()) {
            return unexpected(source_unavailable("git repository " + m_shown,
                                                 git_failure(run, what, m_timeout, m_url)));
        }
        return run->out;
    }

    std::string m_url;   // as configured: git needs its credentials
    std::string m_shown; // without them: for messages people see
    std::chrono::seconds m_timeout;
    std::filesystem::path m_mirror;
    std::filesystem::path m_exports;      // a GC root per exported commit
    std::filesystem::path m_fetch_record; // when the last fetch started, and its error
    LockTable m_locks;
    Nix m_nix;
    std::chrono::seconds m_refs_ttl;
};

} // namespace

bool wait_for_git_fetches(std::chrono::steady_clock::time_point until) {
    auto& f = running_fetches();
    std::unique_lock<std::mutex> g(f.mutex);
    return f.ended.wait_until(g, until, [&] { return f.count == 0; });
}

std::unique_ptr<PackageSource> make_git_source(const Config& config) {
    return std::make_unique<GitSource>(config);
}

} // namespace nixery
