// `nixery popcount`: computes the popularity data (NIX_POPULARITY_URL) for
// the configured package set: evaluates every top-level package, builds
// them (skipping failures), and counts for each store path name how many
// packages' runtime closures contain it. Shows its progress on a terminal.
#pragma once

#include <string>
#include <vector>

namespace nixery {

// Returns the process exit code: 0 written, 1 the run failed (the message
// says why), 2 bad arguments, 130 or 143 stopped by SIGINT or SIGTERM
// (cmd/stop_signals), with nothing written.
int popcount_command(const std::vector<std::string>& args);

} // namespace nixery
