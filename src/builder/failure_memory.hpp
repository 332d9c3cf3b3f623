// Failure memory: a build that failed is answered from the database for a
// while, so a client's retries (and other clients) get its error at once
// instead of starting the same failing build again.
#pragma once

#include "cache/build_cache.hpp"
#include "core/failure.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace nixery {

// How long a failed build is answered from memory.
inline constexpr std::chrono::seconds k_failure_memory{30};
// How long a transient failure (is_transient: a source still being fetched,
// a full disk) is: long enough for the build's waiters to read it, short
// enough that the next pull tries again.
inline constexpr std::chrono::seconds k_fault_memory{3};
// A failure that expires later than this from now was remembered before
// the wall clock stepped back (NTP correcting a clock that was ahead): it is
// ignored and deleted rather than answered for as long as the step. The
// longest memory plus minutes of slack: another thread or process may have
// read its clock a moment after ours, and waited for SQLite's write lock.
inline constexpr std::chrono::seconds k_failure_horizon =
    std::max(k_failure_memory, k_fault_memory) + std::chrono::minutes(5);

// The failure of a build of `image_key` still remembered at `now` (marked
// `remembered`), or nullopt. Its internal text is not kept: the build
// logged it.
Result<std::optional<Failure>> remembered_failure(BuildCache& cache, std::string_view image_key,
                                                  std::int64_t now);

// Remembers that the build of `image_key` failed with `failure` (best
// effort: a failure to remember only costs a rebuild).
void remember_failure(BuildCache& cache, std::string_view image_key, const Failure& failure,
                      std::int64_t now);

} // namespace nixery
