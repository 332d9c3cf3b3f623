#include "cmd/serve.hpp"

#include "builder/build_runner.hpp"
#include "cache/db.hpp"
#include "config.hpp"
#include "core/cache_keys.hpp"
#include "core/layering.hpp"
#include "core/popularity.hpp"
#include "fcgi/worker.hpp"
#include "gc/collector.hpp"
#include "http/fetch.hpp"
#include "metrics/metrics.hpp"
#include "nix/source.hpp"
#include "registry/registry.hpp"
#include "storage/backend.hpp"
#include "util/files.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/subprocess.hpp"
#include "util/supervisor.hpp"
#include "util/text.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace nixery {

namespace {

// Request threads per worker process. libfcgi 2.4.2 select()s on each
// accepted socket, so a worker must keep its descriptors below FD_SETSIZE
// (1024); eight threads with a few each stay far below that.
constexpr int k_threads_per_worker = 8;
constexpr int k_listen_backlog = 1024;
// A worker that dies this soon after starting counts as crashing.
constexpr auto k_crash_window = std::chrono::seconds(2);

struct Listener {
    int fd = -1;
    std::string path; // empty when inherited from systemd (not ours to remove)
};

// systemd socket activation: LISTEN_PID is us and LISTEN_FDS names fd 3.
std::optional<int> inherited_socket(const Environment& env) {
    const auto pid = env.find("LISTEN_PID");
    const auto fds = env.find("LISTEN_FDS");
    if (pid == env.end() || fds == env.end() || std::to_string(getpid()) != pid->second) {
        return std::nullopt;
    }
    if (fds->second != "1") {
        return std::nullopt;
    }
    return 3;
}

Result<Listener> open_listener(const Config& config, const Environment& env) {
    if (auto fd = inherited_socket(env)) {
        ::fcntl(*fd, F_SETFD, FD_CLOEXEC);
        return Listener{*fd, {}};
    }
    const auto path = config.socket().string();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        return fail("socket path \"" + path + "\" is too long; use a shorter NIXERY_STATE_DIR");
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fail("socket failed: " + errno_text(errno));
    }
    // A live socket means another instance uses this state directory.
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        return fail("another nixery is already serving on \"" + path +
                    "\"; give this instance its own NIXERY_STATE_DIR");
    }
    fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return fail("bind \"" + path + "\" failed: " + errno_text(errno));
    }
    // nginx's workers run as another user; the state directory guards access.
    ::chmod(path.c_str(), 0666);
    if (::listen(fd.get(), k_listen_backlog) != 0) {
        return fail("listen \"" + path + "\" failed: " + errno_text(errno));
    }
    return Listener{fd.release(), path};
}

Result<void> check_nix() {
    ProcessSpec spec;
    spec.argv = {"nix-instantiate", "--version"};
    spec.timeout = std::chrono::seconds(30);
    TRY_ASSIGN(const auto run, run_process(spec));
    if (!run.ok()) {
        return fail("nix-instantiate --version failed: " + tail_lines(run.err_tail, 3));
    }
    log::info("found nix", {{"version", tail_lines(run.out, 1)}});
    // Builds write to the store: a user who may not (no daemon socket it
    // can open, a single-user store owned by root) would fail every pull.
    // A daemon that is not running yet only warns: pulls say so (503)
    // until it is.
    spec.argv = {"nix-instantiate", "--eval", "--read-write-mode", "--expr",
                 "builtins.toFile \"nixery-store-probe\" \"\""};
    TRY_ASSIGN(const auto probe, run_process(spec));
    if (probe.ok()) {
        return {};
    }
    const auto why = tail_lines(probe.err_tail, 3);
    if (why.find("Permission denied") != std::string::npos ||
        why.find("Operation not permitted") != std::string::npos) {
        return fail("this user cannot use the Nix store (" + why +
                    "): run as root with single-user Nix (Debian's nix-bin), or where a Nix "
                    "daemon runs (apt install nix-setup-systemd) as a member of the nix-users "
                    "group");
    }
    log::warn("Nix cannot write to its store yet; pulls will say why", {{"error", why}});
    return {};
}

// Everything a worker needs, checked once in the master before forking.
struct Startup {
    Config config;
    Popularity popularity;
    Listener listener;
    Metrics metrics; // shared with the workers
    JobBoard jobs;   // shared with the workers
};

// Ends the history rows of builds whose process died (gc/collector.hpp's
// end_interrupted_builds), saying so.
Result<void> end_builds_of_dead_processes(const Config& config, Db& db) {
    TRY_ASSIGN(const auto locks, LockTable::open(config.lock_file()));
    TRY_ASSIGN(const auto ended,
               end_interrupted_builds(db, locks, static_cast<double>(std::time(nullptr))));
    for (const auto& b : ended) {
        log::info("build ended as interrupted: the process building it stopped",
                  {{"image", b.image}, {"build", b.id}});
    }
    return {};
}

// Says when what the build cache's keys cover changed since the last start
// (a release that bumps a key version, NIXERY_LAYERING, the popularity data,
// NIXERY_LAYER_COMPRESSION): every image is then built anew on its next
// pull, which the operator should hear of now, not from slow pulls. The
// first start has nothing to compare with.
Result<void> note_cache_key_changes(const Config& config, const Popularity& popularity) {
    const auto path = config.state_dir / "cache-keys";
    const auto now = cache_key_settings(layering_identity(config.layering, popularity),
                                        config.layer_compression);
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        TRY_ASSIGN(const auto before, read_file(path));
        if (before == now) {
            return {};
        }
        const auto changed = changed_cache_key_settings(before, now);
        std::string what;
        for (const auto& c : changed) {
            what += (what.empty() ? "" : "; ") + c;
        }
        log::warn("what the build cache's keys cover changed since the last start: each image is "
                  "built anew on its next pull (prebuild the ones that matter)",
                  {{"changed", what}});
    }
    return write_file_atomic(config.state_dir, path, now);
}

// The last data from NIX_POPULARITY_URL that parsed, kept per URL: a start
// when the URL cannot be read (its host down as this machine comes back
// from a power cut) uses it, so the instance serves with the layers and
// cache keys it had instead of not at all.
std::filesystem::path kept_popularity(const Config& config) {
    return config.state_dir /
           ("popularity-" + sha256_hex(config.popularity_url).substr(0, 16) + ".json");
}

// The copies of URLs no longer set, once the server started with this
// URL's data: only the URL in the settings is ever read back, and nixpkgs'
// data is megabytes. (Not by `nixery build`, whose settings may be another
// URL's for a while: the server's copy stays.)
void forget_other_popularity_copies(const Config& config) {
    const auto current = kept_popularity(config).filename().string();
    std::error_code ec;
    for (std::filesystem::directory_iterator it(config.state_dir, ec), end; !ec && it != end;
         it.increment(ec)) {
        const auto name = it->path().filename().string();
        const bool copy = name.size() == current.size() && name.starts_with("popularity-") &&
                          name.ends_with(".json") &&
                          is_lower_hex(std::string_view(name).substr(11, 16), 16);
        std::error_code ignored;
        if (copy && name != current && it->is_regular_file(ignored)) {
            std::filesystem::remove(it->path(), ignored);
        }
    }
}

Result<Startup> start_up() {
    const auto env = current_environment();
    TRY_ASSIGN(auto config, load_config(env, ConfigUse::serve));
    log::set_level(config.log_level);
    TRY(make_dirs(config.state_dir));
    TRY(make_private_dir(config.locks()));
    TRY(check_nix());
    {
        // Creates or migrates the schema before any worker opens it.
        TRY_ASSIGN(auto db, Db::open(config.database(), config.data.sql_dir));
        log::info("database ready",
                  {{"path", config.database().string()}, {"schema", db.schema_version()}});
    }
    {
        TRY_ASSIGN(auto storage, make_storage(config));
        TRY(storage->check());
        TRY(storage->check_client_access());
        log::info("storage ready", {{"backend", storage->describe()}});
    }
    TRY_ASSIGN(auto popularity, load_popularity(config));
    if (!config.popularity_url.empty()) {
        log::info("popularity data loaded", {{"packages", popularity.size()}});
        forget_other_popularity_copies(config);
    }
    if (auto noted = note_cache_key_changes(config, popularity); !noted) {
        log::warn("comparing the cache keys with the last start's failed",
                  {{"error", noted.error().message}});
    }
    TRY_ASSIGN(auto listener, open_listener(config, env));
    TRY_ASSIGN(auto metrics, Metrics::create_shared());
    TRY_ASSIGN(auto jobs,
               JobBoard::create_shared(JobLimits{config.max_builds, config.max_queued_builds}));
    return Startup{std::move(config), std::move(popularity), listener, std::move(metrics),
                   std::move(jobs)};
}

[[noreturn]] void worker_main(Startup& s) {
    const pid_t master = getppid();
    auto storage = make_storage(s.config);
    auto locks = LockTable::open(s.config.lock_file());
    if (!storage || !locks) {
        log::error("worker set-up failed",
                   {{"error", !storage ? storage.error().message : locks.error().message}});
        std::_Exit(1);
    }
    // The job threads must leave SIGTERM to run_worker's sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    // Builds a dead worker (this one may replace it), a killed pool or a
    // machine that stopped left "building" would say so until gc.
    {
        auto db = Db::open(s.config.database(), s.config.data.sql_dir);
        if (auto ended = db ? end_builds_of_dead_processes(s.config, *db)
                            : Result<void>(unexpected(db.error()));
            !ended) {
            log::warn("ending the builds of dead workers failed",
                      {{"error", ended.error().message}});
        }
    }
    BuildRunner runner({s.config, s.popularity, **storage, *locks, s.metrics});
    JobDispatcher dispatcher(s.jobs, runner);
    const ProcessServices services{{s.config, s.popularity, **storage, *locks, s.metrics}, s.jobs};
    const auto code = run_worker(
        s.listener.fd, k_threads_per_worker,
        [&]() -> std::unique_ptr<RequestHandler> {
            auto handler = RegistryHandler::open(services);
            if (!handler) {
                throw std::runtime_error(handler.error().message);
            }
            return std::move(*handler);
        },
        s.metrics, [&dispatcher] { return dispatcher.running() > 0; });
    if (getppid() != master) {
        // The master was killed: nobody waits for this worker, and until it
        // exits it holds the socket a restarted pool needs, for as long as
        // a build can take. The nix-build and git processes it runs die
        // with it (SIGKILL as their parent dies; a builder they leave runs
        // on); its builds' rows are ended as interrupted when the pool
        // starts again, and gc removes what they leave.
        log::warn("worker stopping without its master; builds in flight are cut");
        std::_Exit(1);
    }
    // And if the master dies while this worker drains, the same (when a
    // thread can be had: without one, the drain is as before).
    try {
        std::thread([master] {
            for (;;) {
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                if (getppid() != master) {
                    log::warn("worker stopping without its master; builds in flight are cut");
                    std::_Exit(1);
                }
            }
        }).detach();
    } catch (const std::system_error& e) {
        log::warn("no thread to watch the master while draining", {{"error", e.what()}});
    }
    dispatcher.stop(); // builds this process started run to their end
    // And so do git fetches (a first one of a big repository takes minutes),
    // within the master's drain limit: it kills what remains after.
    if (!wait_for_git_fetches(std::chrono::steady_clock::now() + s.config.drain_timeout())) {
        log::warn("worker stopping during a git fetch; the next fetch starts again");
    }
    std::_Exit(code);
}

} // namespace

Result<Popularity> load_popularity(const Config& config) {
    if (config.popularity_url.empty()) {
        return Popularity();
    }
    auto body = fetch_url(config.popularity_url, std::chrono::seconds(60));
    auto parsed = body ? Popularity::parse(*body) : unexpected(body.error());
    if (parsed) {
        if (auto kept = write_file_atomic(config.state_dir, kept_popularity(config), *body);
            !kept) {
            log::warn("keeping a copy of the popularity data failed",
                      {{"error", kept.error().message}});
        }
        return parsed;
    }
    const auto why = body ? "NIX_POPULARITY_URL \"" + log::redact_url(config.popularity_url) +
                                "\": " + parsed.error().message
                          : body.error().message;
    if (const auto copy = read_file(kept_popularity(config))) {
        if (auto last = Popularity::parse(*copy)) {
            log::warn("popularity data unavailable; using the copy kept from the last start",
                      {{"error", why}});
            return last;
        }
    }
    return fail(why);
}

int serve_command() {
    // Signals are taken synchronously by the master loop below.
    Supervisor supervisor;

    auto startup = start_up();
    if (!startup) {
        log::error("cannot start", {{"error", startup.error().message}});
        return 1;
    }
    auto& s = *startup;
    s.jobs.report_to(&s.metrics);
    log::info("serving", {{"socket", s.listener.path.empty() ? "systemd" : s.listener.path},
                          {"workers", s.config.workers},
                          {"source", s.config.describe_source()}});

    using Clock = std::chrono::steady_clock;
    int restarts = 0;
    // A fork refused (EAGAIN at TasksMax, ENOMEM after an OOM kill) is
    // tried again a second later: the pool never stays short, and never
    // ends while it is not stopping.
    const auto spawn = [&]() -> bool {
        if (const auto pid = supervisor.spawn([&] { worker_main(s); }); !pid) {
            log::error("fork failed; trying again in 1 s", {{"error", pid.error().message}});
            return false;
        }
        return true;
    };
    // A worker that dies leaves its builders behind (Nix's builders run in a
    // session of their own, and single-user nix-build dies without killing
    // them): they become the master's, which kills them for some seconds
    // after, while they come (each when its nix-build has died).
    supervisor.adopt_orphans();
    auto sweep_orphans_until = Clock::time_point::min();
    bool stopping = false;
    auto deadline = Clock::time_point::max();
    auto respawn_after = Clock::time_point::min();
    int missing = s.config.workers;
    while (supervisor.running() > 0 || (!stopping && missing > 0)) {
        if (!stopping) {
            while (missing > 0 && Clock::now() >= respawn_after) {
                if (!spawn()) {
                    respawn_after = Clock::now() + std::chrono::seconds(1);
                    break;
                }
                --missing;
            }
        }
        const auto events = supervisor.wait(std::chrono::milliseconds(200));
        if (Clock::now() < sweep_orphans_until) {
            if (const int killed = supervisor.kill_orphans(); killed > 0) {
                log::warn("killed processes a dead worker left behind", {{"processes", killed}});
            }
        }
        const int sig = events.signal;
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            stopping = true;
            // Builds in flight run to their end; give them their time.
            deadline = Clock::now() + s.config.drain_timeout();
            log::info("draining workers", {{"signal", sig},
                                           {"workers", supervisor.running()},
                                           {"limit", s.config.drain_timeout().count()}});
            supervisor.signal_all(SIGTERM);
        }
        for (const auto& exit : events.exits) {
            if (stopping) {
                continue;
            }
            ++missing;
            ++restarts;
            s.metrics.count_worker_restart();
            log::warn("worker exited; replacing it",
                      {{"worker", static_cast<std::int64_t>(exit.pid)},
                       {"status", exit.code()},
                       {"restarts", restarts}});
            // Its builders, and git's helpers, before anything else; more
            // come as their parents die. (Its builds' rows are ended by the
            // worker that replaces it: the master waits on no database.)
            if (const int killed = supervisor.kill_orphans(); killed > 0) {
                log::warn("killed processes a dead worker left behind", {{"processes", killed}});
            }
            sweep_orphans_until = Clock::now() + std::chrono::seconds(5);
            if (exit.ran < k_crash_window) {
                respawn_after =
                    Clock::now() + std::chrono::seconds(1); // do not spin on a crash loop
            }
        }
        if (stopping && Clock::now() >= deadline) {
            log::warn("drain timed out; killing workers", {{"workers", supervisor.running()}});
            supervisor.signal_all(SIGKILL);
            deadline = Clock::time_point::max();
        }
    }
    if (!s.listener.path.empty()) {
        ::unlink(s.listener.path.c_str());
    }
    log::info("stopped");
    return 0;
}

} // namespace nixery
