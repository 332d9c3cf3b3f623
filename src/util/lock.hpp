// Named locks shared by every thread and process of one instance: Linux
// open-file-description locks on one byte of a single lock file, the byte
// chosen by hashing the name. A lock is exclusive, or shared with other
// shared holders of the same name (readers and a writer). The kernel drops a
// lock when its holder closes it or dies, so a killed worker never leaves a
// build locked.
#pragma once

#include "util/files.hpp"
#include "util/result.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string_view>

namespace nixery {

enum class LockMode {
    exclusive, // one holder at a time
    shared,    // any number of shared holders, but no exclusive one
};

class NamedLock {
public:
    NamedLock(NamedLock&&) = default;
    NamedLock& operator=(NamedLock&&) = default;
    ~NamedLock() = default; // closing the descriptor releases the lock

    // The lock's descriptor, for a child process that must hold the lock
    // as long as it (or a process it leaves behind) lives: ProcessSpec::keep_fd.
    int fd() const { return m_fd.get(); }

private:
    friend class LockTable;
    explicit NamedLock(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

class LockTable {
public:
    // Creates the lock file if needed.
    static Result<LockTable> open(const std::filesystem::path& file);
    // A table on a lock file that open() has created before.
    explicit LockTable(std::filesystem::path file) : m_file(std::move(file)) {}

    // Waits up to `timeout` for the lock named `name`. nullopt: still held by
    // someone else (in a conflicting mode) when the time ran out. Waiting
    // polls, so waiters are not queued: an exclusive waiter can be overtaken
    // by shared holders that keep overlapping.
    Result<std::optional<NamedLock>> acquire(std::string_view name,
                                             std::chrono::milliseconds timeout,
                                             LockMode mode = LockMode::exclusive) const;
    // Takes the lock only if nobody holds it.
    Result<std::optional<NamedLock>> try_acquire(std::string_view name) const {
        return acquire(name, std::chrono::milliseconds(0));
    }

private:
    std::filesystem::path m_file;
};

} // namespace nixery
