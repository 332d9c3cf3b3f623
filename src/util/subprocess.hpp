// Running a program: argv only (never a shell), searched in PATH, in its own
// process group so a timeout can stop it and everything it started. The child
// gets SIGKILL when the thread that started it dies (PR_SET_PDEATHSIG), so a
// worker killed mid-build leaves no Nix client behind; a builder that a
// single-user Nix (no daemon) started outlives it, since a killed Nix cannot
// stop it (serve's master, their subreaper, kills such orphans; `nixery
// build`, `prebuild` and `popcount` stop Nix first on SIGINT and SIGTERM:
// request_stop, from cmd/stop_signals). The OOM
// killer takes the child first (oom_score_adj 500), so memory running out
// fails a build, not the service.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nixery {

struct ProcessSpec {
    std::vector<std::string> argv;
    // "NAME=value" entries added to (or replacing in) the inherited environment.
    std::vector<std::string> env;
    // Zero means no limit. On expiry the group gets SIGTERM, then SIGKILL.
    std::chrono::milliseconds timeout{0};
    // Zero means no limit. Otherwise the group is stopped the same way when
    // the process writes nothing to stdout or stderr for this long: a
    // download that reports its progress and no longer makes any.
    std::chrono::milliseconds stall_timeout{0};
    std::optional<std::filesystem::path> cwd;
    // Upper bound for captured stdout; more is an error (stderr keeps its tail).
    std::size_t max_stdout = 256 << 20;
    // A descriptor the process gets as fd 3 (every other is closed), and its
    // descendants with it unless they close it: an OFD lock it stands for
    // is held until the last of them exits, not only while the caller lives.
    int keep_fd = -1;
};

struct ProcessResult {
    int exit_code = -1; // -1 when killed by a signal
    int signal = 0;
    bool timed_out = false; // stopped by `timeout` or `stall_timeout`
    bool stalled = false;   // stopped by `stall_timeout`
    bool stopped = false;   // stopped by request_stop() (util/stop), or not started after it
    std::string out;
    std::string err_tail; // the last 64 KiB of stderr

    bool ok() const { return exit_code == 0 && !timed_out && !stopped; }
    // "exit code 1", "signal 9", "timed out after 60 s", "stalled for 60 s", "stopped"
    // (`timeout` is the one of the spec that stopped it)
    std::string describe_exit(std::chrono::milliseconds timeout) const;
};

// Runs the process to completion. An error means it could not be run at all
// (or produced more stdout than allowed); a non-zero exit is a result.
Result<ProcessResult> run_process(const ProcessSpec& spec);

// The last `max_lines` non-empty lines of `text`, at most `max_bytes` long.
std::string tail_lines(const std::string& text, std::size_t max_lines,
                       std::size_t max_bytes = 4096);

} // namespace nixery
