#include "util/subprocess.hpp"

#include "util/files.hpp"
#include "util/stop.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace nixery {

namespace {

constexpr std::size_t k_err_tail = 64 * 1024;
constexpr auto k_kill_grace = std::chrono::seconds(5);
// After the child exits, grandchildren that kept our pipes open get this long.
constexpr auto k_drain_after_exit = std::chrono::milliseconds(500);

std::vector<std::string> merged_environment(const std::vector<std::string>& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view entry(*e);
        const auto name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& o : overrides) {
            if (o.compare(0, name.size(), name) == 0) {
                replaced = true;
            }
        }
        if (!replaced) {
            env.emplace_back(entry);
        }
    }
    env.insert(env.end(), overrides.begin(), overrides.end());
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

constexpr char k_helper_oom_score_adj[] = "500";

[[noreturn]] void child_exec(const char* file, char* const argv[], char* const envp[], int out_fd,
                             int err_fd, const char* cwd, pid_t parent, int keep_fd) {
    // Only async-signal-safe calls from here to execve: the parent may be threaded.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    // The OOM killer takes this one (a Nix evaluation, most likely: the
    // biggest of them) before the workers, the master or nginx: then one
    // build fails instead of the service. Raising the score needs no
    // privilege; where it cannot be written the default stays.
    if (const int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); adj >= 0) {
        (void)!write(adj, k_helper_oom_score_adj, sizeof k_helper_oom_score_adj - 1);
        close(adj);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
        _exit(127);
    }
    if (keep_fd >= 0) {
        // dup2 onto itself would keep FD_CLOEXEC; elsewhere it clears it.
        if (keep_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(keep_fd, 3) < 0) {
            _exit(127);
        }
    }
    syscall(SYS_close_range, keep_fd >= 0 ? 4U : 3U, ~0U, 0U);
    if (cwd != nullptr && chdir(cwd) != 0) {
        _exit(127);
    }
    execvpe(file, argv, envp);
    const char msg[] = "exec failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
}

} // namespace

std::string ProcessResult::describe_exit(std::chrono::milliseconds timeout) const {
    if (stopped) {
        return "stopped";
    }
    if (stalled) {
        return "no progress for " + std::to_string(timeout.count() / 1000) + " s";
    }
    if (timed_out) {
        return "timed out after " + std::to_string(timeout.count() / 1000) + " s";
    }
    if (signal != 0) {
        return "killed by signal " + std::to_string(signal);
    }
    return "exit code " + std::to_string(exit_code);
}

Result<ProcessResult> run_process(const ProcessSpec& spec) {
    if (spec.argv.empty()) {
        return fail("run: empty argv");
    }
    if (stop_requested()) {
        ProcessResult stopped;
        stopped.stopped = true;
        return stopped;
    }
    auto argv_storage = spec.argv;
    auto env_storage = merged_environment(spec.env);
    auto argv = c_strings(argv_storage);
    auto envp = c_strings(env_storage);
    const std::string cwd = spec.cwd ? spec.cwd->string() : std::string();

    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        return fail("pipe for \"" + spec.argv[0] + "\" failed: " + errno_text(errno));
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return fail("pipe for \"" + spec.argv[0] + "\" failed: " + errno_text(errno));
    }
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]), err_r(err_pipe[0]), err_w(err_pipe[1]);

    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        return fail("fork for \"" + spec.argv[0] + "\" failed: " + errno_text(errno));
    }
    if (pid == 0) {
        child_exec(argv[0], argv.data(), envp.data(), out_w.get(), err_w.get(),
                   cwd.empty() ? nullptr : cwd.c_str(), parent, spec.keep_fd);
    }
    setpgid(pid, pid); // also done by the child; whichever runs first wins the race
    out_w.reset();
    err_w.reset();

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const bool limited = spec.timeout.count() > 0;
    const auto deadline = start + spec.timeout;
    const bool watch_stalls = spec.stall_timeout.count() > 0;
    auto last_output = start;
    constexpr auto k_never = Clock::time_point::max();
    auto kill_at = k_never; // when SIGKILL follows the SIGTERM of a timeout
    std::optional<Clock::time_point> exited_at;

    ProcessResult result;
    bool too_much = false;
    int status = 0;
    bool reaped = false;
    char buf[65536];
    // SIGTERM at the deadline or a stop request, SIGKILL after the grace period.
    const auto enforce_deadline = [&](Clock::time_point now) {
        const bool over_time = limited && now >= deadline;
        const bool stalled = watch_stalls && now - last_output >= spec.stall_timeout;
        const bool stopping = result.timed_out || result.stopped;
        if (!stopping && (over_time || stalled)) {
            result.timed_out = true;
            result.stalled = !over_time;
            kill(-pid, SIGTERM);
            kill_at = now + k_kill_grace;
        } else if (!stopping && stop_requested()) {
            result.stopped = true;
            kill(-pid, SIGTERM);
            kill_at = now + k_kill_grace;
        }
        if (now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = k_never;
        }
    };

    while (out_r || err_r) {
        const auto now = Clock::now();
        enforce_deadline(now);
        if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
            reaped = true;
            exited_at = now;
        }
        if (exited_at && now - *exited_at > k_drain_after_exit) {
            break;
        }
        pollfd fds[2];
        nfds_t n = 0;
        if (out_r) {
            fds[n++] = {out_r.get(), POLLIN, 0};
        }
        if (err_r) {
            fds[n++] = {err_r.get(), POLLIN, 0};
        }
        if (poll(fds, n, 100) < 0 && errno != EINTR) {
            break;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            const auto got = read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                (fds[i].fd == out_r.get() ? out_r : err_r).reset();
                continue;
            }
            last_output = Clock::now();
            if (fds[i].fd == out_r.get()) {
                if (result.out.size() + static_cast<std::size_t>(got) > spec.max_stdout) {
                    if (!too_much) {
                        too_much = true;
                        kill(-pid, SIGKILL);
                    }
                } else {
                    result.out.append(buf, static_cast<std::size_t>(got));
                }
            } else {
                result.err_tail.append(buf, static_cast<std::size_t>(got));
                if (result.err_tail.size() > 2 * k_err_tail) {
                    result.err_tail.erase(0, result.err_tail.size() - k_err_tail);
                }
            }
        }
    }
    if (!reaped) {
        // Pipes closed; the process may still be running (it closed them itself).
        while (waitpid(pid, &status, WNOHANG) != pid) {
            enforce_deadline(Clock::now());
            usleep(20000);
        }
    }
    // Whatever the group started must not outlive the call.
    kill(-pid, SIGKILL);
    if (result.err_tail.size() > k_err_tail) {
        result.err_tail.erase(0, result.err_tail.size() - k_err_tail);
    }
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    if (too_much) {
        return fail("run \"" + spec.argv[0] + "\" failed: more than " +
                    std::to_string(spec.max_stdout) + " bytes on stdout");
    }
    if (result.exit_code == 127 && result.err_tail == "exec failed\n") {
        return fail("run \"" + spec.argv[0] + "\" failed: not found in PATH or not executable");
    }
    return result;
}

std::string tail_lines(const std::string& text, std::size_t max_lines, std::size_t max_bytes) {
    std::vector<std::string_view> lines;
    std::string_view rest(text);
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        auto line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.remove_suffix(1);
        }
        if (!line.empty()) {
            lines.push_back(line);
        }
    }
    const auto first = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string out;
    for (auto i = first; i < lines.size(); ++i) {
        if (!out.empty()) {
            out += '\n';
        }
        out += lines[i];
    }
    if (out.size() > max_bytes) {
        out = "…" + out.substr(out.size() - max_bytes);
    }
    return out;
}

} // namespace nixery
