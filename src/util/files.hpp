// Small filesystem helpers with the error messages of the house style:
// file descriptors that close themselves, whole-file reads of small files,
// and publication by staging file + fsync + rename, so a reader sees either
// nothing or the complete file under its final name.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

std::string errno_text(int err);

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : m_fd(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset(o.release());
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return m_fd; }
    explicit operator bool() const { return m_fd >= 0; }
    int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    void reset(int fd = -1);

private:
    int m_fd = -1;
};

// The whole content of a small file. Absence is an error like any other.
Result<std::string> read_file(const std::filesystem::path& path);

// Reads `fd` to its end 1 MiB at a time, handing each piece to `each`,
// so a file of any size passes through in bounded memory. Stops at the
// first error, its own (worded with `what`) or one of `each`.
Result<void> read_chunks(int fd, const std::filesystem::path& what,
                         const std::function<Result<void>(std::string_view)>& each);

// Writes all of `data` to `fd`, retrying short writes.
Result<void> write_all(int fd, std::string_view data, const std::filesystem::path& what);

// Creates the directory and its parents; existing ones are fine.
Result<void> make_dirs(const std::filesystem::path& dir);

// make_dirs(), and then `dir` itself is made accessible to its owner only
// (0700), whatever the umask: for state that users in our group (nginx's,
// which passes through the state directory to the blobs) must not read.
// A directory owned by another user is left as it is.
Result<void> make_private_dir(const std::filesystem::path& dir);

// The names in directory `dir` but "." and "..", in byte order (so a walk
// over them is the same on every machine). A read that fails midway is an
// error, not a shorter list.
Result<std::vector<std::string>> sorted_dir_entries(const std::string& dir);

// fsync on a directory so a rename inside it survives a crash.
Result<void> fsync_dir(const std::filesystem::path& dir);

// Bytes an unprivileged process may still write on the filesystem holding
// `path` (statvfs f_bavail); nullopt when it cannot be asked.
std::optional<std::uint64_t> free_space(const std::filesystem::path& path);

// A uniquely named file in `dir` (`prefix`, 16 hex digits, ".tmp"), open
// for writing. Unless commit() ran, the destructor removes it, so an
// interrupted write leaves no file behind (a killed process leaves it to
// `nixery gc`, or to remove_stale_staging_files()).
class StagingFile {
public:
    static Result<StagingFile> create(const std::filesystem::path& dir, mode_t mode = 0644,
                                      std::string_view prefix = {});
    ~StagingFile();
    StagingFile(StagingFile&&) noexcept;
    StagingFile& operator=(StagingFile&&) = delete;

    int fd() const { return m_fd.get(); }
    const std::filesystem::path& path() const { return m_path; }
    // fsync, close, rename to `final_path`, fsync its directory.
    Result<void> commit(const std::filesystem::path& final_path);
    // fsync and close but keep the file where it is (the caller moves it).
    Result<void> finish();
    // The file is the caller's from now on.
    void keep() { m_keep = true; }

private:
    StagingFile(UniqueFd fd, std::filesystem::path path)
        : m_fd(std::move(fd)), m_path(std::move(path)) {}
    UniqueFd m_fd;
    std::filesystem::path m_path;
    bool m_keep = false;
};

// A staging file (as StagingFile names them, with `prefix`) in `dir` that
// nothing wrote to since `before` (Unix time): what a killed process left.
// None when `dir` does not exist.
struct StaleFile {
    std::filesystem::path path;
    std::uint64_t size = 0;
};
Result<std::vector<StaleFile>> stale_staging_files(const std::filesystem::path& dir,
                                                   std::string_view prefix, std::int64_t before);

// Removes the stale staging files of `prefix` in `dir` untouched for
// `grace`. Errors are ignored (those files stay for next time).
void remove_stale_staging_files(const std::filesystem::path& dir, std::string_view prefix,
                                std::chrono::seconds grace);

// Writes `text` to standard output and flushes it: an error when any of it
// could not be written (a full disk, a closed pipe), so a command whose
// output is redirected to a file does not exit 0 with the file cut short.
Result<void> write_stdout(std::string_view text);

// Publishes `data` as `final_path` through a staging file in `staging_dir`.
Result<void> write_file_atomic(const std::filesystem::path& staging_dir,
                               const std::filesystem::path& final_path, std::string_view data);

} // namespace nixery
