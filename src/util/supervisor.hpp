// Child processes of a master that outlives them: `nixery serve`'s workers
// and `nixery run`'s worker pool and nginx. The supervisor forks them with a
// clean signal mask, reaps them, and takes the signals that stop the master
// synchronously (sigtimedwait), so neither command needs a signal handler.
// What to do when a child exits or a signal arrives (replace it, drain, stop
// the rest) stays with the command; this file must not know about workers,
// nginx or the registry.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace nixery {

class Supervisor {
public:
    using Clock = std::chrono::steady_clock;

    // A child that exited and has been reaped.
    struct Exit {
        pid_t pid = 0;
        int status = 0;        // as waitpid(2) reports it
        Clock::duration ran{}; // how long it ran
        int code() const;      // its exit code, or minus the signal that killed it
    };

    // What one wait() saw.
    struct Events {
        int signal = 0; // SIGTERM, SIGINT or SIGHUP when one arrived, else 0
        std::vector<Exit> exits;
    };

    // Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP in the calling thread, so only
    // wait() takes them. Construct it before any thread starts: threads inherit
    // the mask, and a thread that left these unblocked would take them instead.
    Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Forks a child that runs `child` with an empty signal mask, and that
    // gets SIGTERM when the master dies (PR_SET_PDEATHSIG). `child` must
    // not return (it execs or _exits; a return exits 127). Returns the
    // child's pid, or an error when fork(2) failed.
    Result<pid_t> spawn(const std::function<void()>& child);

    // spawn() of a program: argv[0] is a path, argv goes to execv(2). A child
    // whose exec fails reports it on stderr and exits 127. In a group of
    // its `own`, it leads it (pid = group id), so that kill(-pid, …) also
    // reaches processes it leaves behind.
    enum class Group { inherited, own };
    Result<pid_t> spawn_program(const std::vector<std::string>& argv,
                                Group group = Group::inherited);

    // Waits up to `tick` for one of the blocked signals, then reaps every
    // child that has exited. Children this supervisor did not spawn are
    // reaped and left out.
    Events wait(std::chrono::milliseconds tick);

    // Whether `pid` (spawned here) has exited, reaping it if so; for waiting
    // on a child's start-up without the full wait().
    bool has_exited(pid_t pid);

    // Sends `sig` to every running child.
    void signal_all(int sig) const;

    // Makes this process the reaper of orphans among its descendants
    // (PR_SET_CHILD_SUBREAPER): a process whose parent, a child of ours,
    // died becomes our child instead of init's, for kill_orphans().
    void adopt_orphans();
    // SIGKILLs the children this supervisor did not spawn (adopted orphans),
    // with their process group when they lead it or its leader is gone; how
    // many it found. Orphans of live children count too (a process a
    // builder left): call it when a child died, for a few seconds.
    int kill_orphans() const;

    bool is_running(pid_t pid) const { return m_children.count(pid) != 0; }
    std::size_t running() const { return m_children.size(); }

private:
    sigset_t m_handled{};
    std::map<pid_t, Clock::time_point> m_children; // pid → when it started
};

} // namespace nixery
