#include "cmd/run.hpp"

#include "config.hpp"
#include "nginx/render.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/supervisor.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace nixery {

namespace {

using Clock = std::chrono::steady_clock;

// `name` in the directories of `path` (PATH's value), then in `extra_dirs`.
std::string find_program(const std::string& name, std::string_view path,
                         const std::vector<std::string>& extra_dirs) {
    std::vector<std::string> dirs;
    std::string_view rest = path;
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        dirs.emplace_back(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
    for (const auto& d : dirs) {
        const auto candidate = d + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return {};
}

bool accepts(int family, const void* addr, socklen_t len) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = fd >= 0 && ::connect(fd, static_cast<const sockaddr*>(addr), len) == 0;
    if (fd >= 0) {
        ::close(fd);
    }
    return ok;
}

bool unix_socket_accepts(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    return accepts(AF_UNIX, &a, sizeof a);
}

bool port_accepts(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return accepts(AF_INET, &a, sizeof a);
}

// Waits until `ready()` or until `pid` exits; false if it exited or timed out.
template <typename F>
bool wait_ready(Supervisor& supervisor, pid_t pid, F ready, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (ready()) {
            return true;
        }
        if (supervisor.has_exited(pid)) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// Copies everything written to our stderr (our log lines and those of the
// children, which inherit it) to the terminal and to a log file in the state
// directory. stop() restores stderr and waits for the copy to drain.
class StderrTee {
public:
    explicit StderrTee(const std::filesystem::path& file) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return;
        }
        m_terminal.reset(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
        m_file.reset(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        UniqueFd read_end(fds[0]);
        UniqueFd write_end(fds[1]);
        if (!m_terminal || !m_file || ::dup2(write_end.get(), STDERR_FILENO) < 0) {
            return;
        }
        m_thread = std::thread([this, fd = std::move(read_end)] { copy(fd.get()); });
    }
    ~StderrTee() { stop(); }

    void stop() {
        if (!m_thread.joinable()) {
            return;
        }
        ::dup2(m_terminal.get(), STDERR_FILENO);
        m_stopping = true;
        m_thread.join();
    }

private:
    void copy(int fd) {
        char buf[65536];
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            const int ready = ::poll(&p, 1, 100);
            if (ready == 0) {
                if (m_stopping) {
                    return; // drained; a straggler holding the pipe is not waited for
                }
                continue;
            }
            const auto n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return;
            }
            const std::string_view chunk(buf, static_cast<std::size_t>(n));
            (void)write_all(m_terminal.get(), chunk, "stderr");
            (void)write_all(m_file.get(), chunk, "nixery.log");
        }
    }

    UniqueFd m_terminal;
    UniqueFd m_file;
    std::atomic<bool> m_stopping{false};
    std::thread m_thread;
};

} // namespace

int run_command(const char* self) {
    Supervisor supervisor; // before StderrTee starts its thread

    const auto env = current_environment();
    auto config = load_config(env, ConfigUse::serve);
    if (!config) {
        log::error("cannot start", {{"error", config.error().message}});
        return 1;
    }
    log::set_level(config->log_level);
    if (config->storage != StorageKind::filesystem) {
        // nginx serves blobs only for the filesystem backend; others redirect.
        log::info("blobs are served by redirects to the object store");
    }
    if (auto made = make_dirs(config->state_dir); !made) {
        log::error("cannot start", {{"error", made.error().message}});
        return 1;
    }
    // Before anything here is written: its nginx.conf and pid are that
    // instance's, and its socket would pass for this one's pool.
    if (unix_socket_accepts(config->socket().string())) {
        log::error("cannot start", {{"error", "another nixery is running with this "
                                              "NIXERY_STATE_DIR; give this one its own"}});
        return 1;
    }
    StderrTee tee(config->state_dir / "nixery.log");
    auto nginx_conf = write_local_nginx_config(*config);
    if (!nginx_conf) {
        log::error("cannot start", {{"error", nginx_conf.error().message}});
        return 1;
    }
    const auto path = env.find("PATH");
    const auto nginx =
        find_program("nginx", path == env.end() ? "" : path->second, {"/usr/sbin", "/sbin"});
    if (nginx.empty()) {
        log::error(
            "cannot start",
            {{"error", "nginx not found in PATH, /usr/sbin or /sbin (Debian package nginx)"}});
        return 1;
    }
    if (port_accepts(config->port)) {
        log::error("cannot start",
                   {{"error", "port " + std::to_string(config->port) +
                                  " on 127.0.0.1 is in use; set PORT to a free one"}});
        return 1;
    }

    // nginx's manifest cache is only a cache: answers kept from before this
    // start (by another version, or other settings) would be served for tags
    // for up to NIXERY_SOURCE_TTL.
    std::error_code ec;
    std::filesystem::remove_all(config->state_dir / "nginx-cache", ec);
    if (ec) {
        log::warn("emptying nginx's manifest cache failed", {{"error", ec.message()}});
    }

    char exe[4096];
    const auto n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    const std::string self_path = n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : self;
    const auto pool = supervisor.spawn_program({self_path, "serve"});
    if (!pool) {
        log::error("cannot start", {{"error", pool.error().message}});
        return 1;
    }
    if (!wait_ready(
            supervisor, *pool, [&] { return unix_socket_accepts(config->socket().string()); },
            std::chrono::seconds(120))) {
        log::error("the worker pool did not start; see its messages above");
        kill(*pool, SIGTERM);
        waitpid(*pool, nullptr, 0);
        return 1;
    }
    const auto state = config->state_dir.string();
    // nginx's workers outlive a master that dies (kill -9, OOM) and would
    // keep the port: they are in its process group, which goes with it.
    const auto web = supervisor.spawn_program(
        {nginx, "-p", state, "-e", state + "/nginx-error.log", "-c", nginx_conf->string()},
        Supervisor::Group::own);
    if (!web || !wait_ready(
                    supervisor, *web, [&] { return port_accepts(config->port); },
                    std::chrono::seconds(30))) {
        log::error("nginx did not start", {{"error_log", state + "/nginx-error.log"}});
        kill(*pool, SIGTERM);
        waitpid(*pool, nullptr, 0);
        return 1;
    }
    log::info("nixery is running",
              {{"url", "http://127.0.0.1:" + std::to_string(config->port) + "/v2/"},
               {"storage", config->storage == StorageKind::gcs  ? "gs://" + config->gcs.bucket
                           : config->storage == StorageKind::s3 ? "s3://" + config->s3.bucket
                                                                : config->storage_path.string()},
               {"state", state},
               {"source", config->describe_source()}});

    int exit_code = 0;
    bool stopping = false;
    const auto stop = [&](int code) {
        if (!stopping) {
            stopping = true;
            exit_code = code;
            if (supervisor.is_running(*web)) {
                kill(*web, SIGQUIT); // graceful: finish requests in flight
            }
            if (supervisor.is_running(*pool)) {
                kill(*pool, SIGTERM);
            }
        }
    };
    while (supervisor.running() > 0) {
        const auto events = supervisor.wait(std::chrono::seconds(1));
        if (events.signal != 0) {
            log::info("stopping", {{"signal", events.signal}});
            stop(0);
        }
        for (const auto& exit : events.exits) {
            if (exit.pid == *pool && !stopping) {
                log::error("the worker pool exited; stopping nginx");
                stop(1);
            } else if (exit.pid == *web && !stopping) {
                log::error("nginx exited; stopping the worker pool",
                           {{"error_log", state + "/nginx-error.log"}});
                kill(-*web, SIGKILL); // workers and cache processes it left
                stop(1);
            }
        }
    }
    return exit_code;
}

} // namespace nixery
