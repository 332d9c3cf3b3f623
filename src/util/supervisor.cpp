#include "util/supervisor.hpp"

#include "util/files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nixery {

int Supervisor::Exit::code() const {
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

Supervisor::Supervisor() {
    sigemptyset(&m_handled);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) {
        sigaddset(&m_handled, s);
    }
    sigprocmask(SIG_BLOCK, &m_handled, nullptr);
}

Result<pid_t> Supervisor::spawn(const std::function<void()>& child) {
    const pid_t master = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        return fail("fork failed: " + errno_text(errno));
    }
    if (pid == 0) {
        // Set-up every supervised child gets, before it runs its own code.
        // A master killed without a chance to stop its children (kill -9, a
        // crash) must not leave them behind holding the socket or the port:
        // the kernel sends them SIGTERM (kept across exec, so nginx gets it
        // too; workers drain briefly, see run_worker). A master that died
        // before prctl() took effect is seen by its pid.
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != master) {
            std::_Exit(1);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        child();
        std::_Exit(127);
    }
    m_children[pid] = Clock::now();
    return pid;
}

Result<pid_t> Supervisor::spawn_program(const std::vector<std::string>& argv, Group group) {
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    return spawn([&] {
        if (group == Group::own) {
            ::setpgid(0, 0);
        }
        execv(args[0], args.data());
        std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
        _exit(127);
    });
}

Supervisor::Events Supervisor::wait(std::chrono::milliseconds tick) {
    Events events;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(tick);
    timespec timeout{static_cast<time_t>(seconds.count()),
                     static_cast<long>(std::chrono::nanoseconds(tick - seconds).count())};
    siginfo_t info{};
    const int sig = sigtimedwait(&m_handled, &info, &timeout);
    if (sig > 0 && sig != SIGCHLD) {
        events.signal = sig;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        const auto it = m_children.find(pid);
        if (it == m_children.end()) {
            continue;
        }
        events.exits.push_back({pid, status, Clock::now() - it->second});
        m_children.erase(it);
    }
    return events;
}

bool Supervisor::has_exited(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
        m_children.erase(pid);
        return true;
    }
    return false;
}

void Supervisor::adopt_orphans() {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int Supervisor::kill_orphans() const {
    const auto self = getpid();
    int found = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::ifstream in(it->path() / "stat");
        std::string stat;
        std::getline(in, stat);
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        const auto close = stat.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        std::istringstream rest(stat.substr(close + 1));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (ppid != self || m_children.count(pid) != 0 || state == 'Z') {
            continue;
        }
        ++found;
        // With its process group when it leads one (a builder's session) or
        // the group's leader is gone (git's helpers of a fetch that died);
        // not a group whose leader lives (a build that merely left a
        // process behind).
        const pid_t group = getpgid(pid);
        const bool leaderless =
            group > 0 && group != getpgrp() && kill(group, 0) != 0 && errno == ESRCH;
        if (group == pid || leaderless) {
            kill(-group, SIGKILL);
        }
        kill(pid, SIGKILL);
    }
    return found;
}

void Supervisor::signal_all(int sig) const {
    for (const auto& [pid, started] : m_children) {
        kill(pid, sig);
    }
}

} // namespace nixery
