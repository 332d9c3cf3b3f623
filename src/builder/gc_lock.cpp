#include "builder/gc_lock.hpp"

#include "builder/server_fault.hpp"

#include <algorithm>

namespace nixery {

Result<NamedLock, Failure> hold_off_gc(const LockTable& locks, std::chrono::milliseconds wait) {
    // gc holds the lock for a second or so at a time; waiting longer than
    // this means something is wrong with it.
    wait = std::min(wait, std::chrono::milliseconds(std::chrono::minutes(5)));
    auto lock = locks.acquire(k_gc_lock, wait, LockMode::shared);
    if (!lock) {
        return unexpected(server_fault(lock.error(), "the cache"));
    }
    if (!*lock) {
        return unexpected(
            busy("the registry is collecting garbage (it held the cache too long); retry shortly"));
    }
    return std::move(**lock);
}

} // namespace nixery
