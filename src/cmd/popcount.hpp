// `nixery popcount`: computes the popularity data (NIX_POPULARITY_URL) for
// the configured package set: evaluates every top-level package, builds
// them (skipping failures), and counts for each store path name how many
// packages' runtime closures contain it. Shows its progress on a terminal.
#pragma once

#include <string>
#include <vector>

namespace nixery {

int popcount_command(const std::vector<std::string>& args);

} // namespace nixery
