// The one name builders and `nixery gc` agree on, in a header of its own so
// gc need not include the builder, and how a builder holds it.
#pragma once

#include "core/failure.hpp"
#include "util/lock.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace nixery {

// The named lock that keeps `nixery gc` from deleting what a build is about
// to reference. A builder holds it shared from the moment it looks a layer,
// blob or image up in the cache until the image that references them is
// recorded (or, for a cache hit, its last use is): the window in which a
// blob is in use but not yet referenced by any recorded image. gc holds it
// exclusively while it decides and deletes, so it never sees such a window
// half done. Nix runs outside it: gc waits for packing, not for builds.
inline constexpr std::string_view k_gc_lock = "gc";

// The named lock of an image's build, by its image key: its builder holds
// it from before the build's history row is written until after the row is
// ended, so a free lock and a row still open mean the process building it
// died (gc and the pool's start end such rows as interrupted).
inline std::string image_build_lock(std::string_view image_key) {
    return "image:" + std::string(image_key);
}

// k_gc_lock held shared, for as long as the result lives. Waits up to
// `wait` (at most five minutes: gc holds it for a second or so at a time);
// `busy` when gc held it longer, a fault when the lock file failed.
Result<NamedLock, Failure> hold_off_gc(const LockTable& locks, std::chrono::milliseconds wait);

} // namespace nixery
