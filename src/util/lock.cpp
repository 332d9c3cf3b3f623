#include "util/lock.hpp"

#include "util/sha256.hpp"
#include "util/stop.hpp"

#include <cerrno>
#include <fcntl.h>
#include <thread>
#include <unistd.h>

namespace nixery {

Result<LockTable> LockTable::open(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) {
        return fail("open lock file \"" + file.string() + "\" failed: " + errno_text(errno));
    }
    return LockTable(file);
}

Result<std::optional<NamedLock>>
LockTable::acquire(std::string_view name, std::chrono::milliseconds timeout, LockMode mode) const {
    Sha256 h;
    h.update(name);
    const auto digest = h.finish();
    std::uint64_t offset = 0;
    for (int i = 0; i < 8; ++i) {
        offset = (offset << 8) | digest[i];
    }
    offset &= (std::uint64_t{1} << 62) - 1; // stay far below off_t's maximum

    // A descriptor of our own: OFD locks conflict between descriptions, so
    // two threads of one process exclude each other too.
    UniqueFd fd(::open(m_file.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        return fail("open lock file \"" + m_file.string() + "\" failed: " + errno_text(errno));
    }
    struct flock fl {};
    fl.l_type = mode == LockMode::shared ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(offset);
    fl.l_len = 1;

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (::fcntl(fd.get(), F_OFD_SETLK, &fl) == 0) {
            return std::optional<NamedLock>(NamedLock(std::move(fd)));
        }
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            return fail("lock \"" + std::string(name) + "\" failed: " + errno_text(errno));
        }
        // A command asked to stop gives up its wait as at its deadline.
        if (std::chrono::steady_clock::now() >= deadline || stop_requested()) {
            return std::optional<NamedLock>();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

} // namespace nixery
