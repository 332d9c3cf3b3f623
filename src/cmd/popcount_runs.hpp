// The two ways `nixery popcount` counts popularity data (cmd/popcount.cpp
// chooses by its arguments). Each shows its progress on stderr and returns
// the command's exit status.
#pragma once

#include <string>

namespace nixery {

class Progress;

// From a channel's list of store paths and a binary cache's narinfo files
// (their references), without building or downloading any NAR; what was
// read is kept in a journal, so a run resumes an interrupted one.
struct CacheCount {
    std::string store_paths; // URL (http, https, file)
    std::string cache = "https://cache.nixos.org";
    std::string journal;
    std::string output; // empty: stdout
    int jobs = 16;
};
int count_from_cache(const CacheCount& opts);

// For the package set configured as for `nixery serve`: evaluates every
// top-level package, builds them (skipping failures) and counts over their
// closures.
int count_by_building(const std::string& output);

// Prints "nixery popcount: MESSAGE" (after stopping the progress line) and
// returns the exit status of a failed run.
int popcount_failure(const std::string& message);
int popcount_failure(Progress& progress, const std::string& message);

} // namespace nixery
