#include "util/files.hpp"

#include "util/text.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <random>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace nixery {

namespace fs = std::filesystem;

std::string errno_text(int err) {
    char buf[256];
    return strerror_r(err, buf, sizeof buf);
}

void UniqueFd::reset(int fd) {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
    m_fd = fd;
}

Result<std::string> read_file(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return fail("open \"" + path.string() + "\" failed: " + errno_text(errno));
    }
    std::string out;
    char buf[65536];
    for (;;) {
        const auto n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("read \"" + path.string() + "\" failed: " + errno_text(errno));
        }
        if (n == 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

Result<void> read_chunks(int fd, const fs::path& what,
                         const std::function<Result<void>(std::string_view)>& each) {
    std::vector<char> buf(1 << 20);
    for (;;) {
        const auto n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("read \"" + what.string() + "\" failed: " + errno_text(errno));
        }
        if (n == 0) {
            return {};
        }
        TRY(each(std::string_view(buf.data(), static_cast<std::size_t>(n))));
    }
}

Result<void> write_all(int fd, std::string_view data, const fs::path& what) {
    while (!data.empty()) {
        const auto n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("write \"" + what.string() + "\" failed: " + errno_text(errno));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> make_dirs(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        return fail("mkdir \"" + dir.string() + "\" failed: " + ec.message());
    }
    return {};
}

Result<void> make_private_dir(const fs::path& dir) {
    TRY(make_dirs(dir));
    if (::chmod(dir.c_str(), 0700) != 0 && errno != EPERM) {
        return fail("chmod \"" + dir.string() + "\" failed: " + errno_text(errno));
    }
    return {};
}

Result<void> fsync_dir(const fs::path& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) {
        return fail("fsync \"" + dir.string() + "\" failed: " + errno_text(errno));
    }
    return {};
}

Result<std::vector<std::string>> sorted_dir_entries(const std::string& dir) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) {
        return fail("opendir \"" + dir + "\" failed: " + errno_text(errno));
    }
    std::vector<std::string> names;
    for (;;) {
        errno = 0; // readdir's end and its failure differ only by errno
        const dirent* de = ::readdir(d.get());
        if (de == nullptr) {
            break;
        }
        const std::string_view n(de->d_name);
        if (n != "." && n != "..") {
            names.emplace_back(n);
        }
    }
    if (errno != 0) {
        return fail("readdir \"" + dir + "\" failed: " + errno_text(errno));
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<std::uint64_t> free_space(const fs::path& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

Result<StagingFile> StagingFile::create(const fs::path& dir, mode_t mode, std::string_view prefix) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (int attempt = 0; attempt < 16; ++attempt) {
        char name[40];
        std::snprintf(name, sizeof name, "%016llx.tmp", static_cast<unsigned long long>(rng()));
        auto path = dir / (std::string(prefix) + name);
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            ::fchmod(fd, mode); // the umask must not make blobs unreadable for nginx
            return StagingFile(UniqueFd(fd), std::move(path));
        }
        if (errno != EEXIST) {
            return fail("create \"" + path.string() + "\" failed: " + errno_text(errno));
        }
    }
    return fail("create staging file in \"" + dir.string() + "\" failed: too many collisions");
}

namespace {

bool is_staging_file_name(std::string_view name, std::string_view prefix) {
    if (!name.starts_with(prefix)) {
        return false;
    }
    const auto rest = name.substr(prefix.size());
    return rest.size() == 20 && rest.ends_with(".tmp") && is_lower_hex(rest.substr(0, 16), 16);
}

} // namespace

Result<std::vector<StaleFile>> stale_staging_files(const fs::path& dir, std::string_view prefix,
                                                   std::int64_t before) {
    std::vector<StaleFile> stale;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        struct stat st {};
        if (is_staging_file_name(it->path().filename().string(), prefix) &&
            ::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < before) {
            stale.push_back({it->path(), static_cast<std::uint64_t>(st.st_size)});
        }
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
        return fail("list \"" + dir.string() + "\" failed: " + ec.message());
    }
    return stale;
}

void remove_stale_staging_files(const fs::path& dir, std::string_view prefix,
                                std::chrono::seconds grace) {
    if (const auto stale = stale_staging_files(dir, prefix, std::time(nullptr) - grace.count())) {
        for (const auto& f : *stale) {
            ::unlink(f.path.c_str());
        }
    }
}

StagingFile::StagingFile(StagingFile&& o) noexcept
    : m_fd(std::move(o.m_fd)), m_path(std::move(o.m_path)), m_keep(o.m_keep) {
    o.m_keep = true;
}

StagingFile::~StagingFile() {
    if (!m_keep && !m_path.empty()) {
        ::unlink(m_path.c_str());
    }
}

Result<void> StagingFile::finish() {
    if (::fsync(m_fd.get()) != 0) {
        return fail("fsync \"" + m_path.string() + "\" failed: " + errno_text(errno));
    }
    if (::close(m_fd.release()) != 0) {
        return fail("close \"" + m_path.string() + "\" failed: " + errno_text(errno));
    }
    return {};
}

Result<void> StagingFile::commit(const fs::path& final_path) {
    if (m_fd) {
        TRY(finish());
    }
    if (::rename(m_path.c_str(), final_path.c_str()) != 0) {
        return fail("rename \"" + m_path.string() + "\" to \"" + final_path.string() +
                    "\" failed: " + errno_text(errno));
    }
    m_keep = true;
    // "out.tar" has no parent path: its directory is the working directory.
    const auto dir = final_path.parent_path();
    return fsync_dir(dir.empty() ? fs::path(".") : dir);
}

Result<void> write_file_atomic(const fs::path& staging_dir, const fs::path& final_path,
                               std::string_view data) {
    TRY_ASSIGN(auto staged, StagingFile::create(staging_dir));
    TRY(write_all(staged.fd(), data, staged.path()));
    return staged.commit(final_path);
}

Result<void> write_stdout(std::string_view text) {
    errno = 0;
    const bool written = std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
    if (std::fflush(stdout) != 0 || !written || std::ferror(stdout) != 0) {
        return fail(std::string("writing to standard output failed: ") +
                    (errno != 0 ? errno_text(errno) : "unknown error"));
    }
    return {};
}

} // namespace nixery
