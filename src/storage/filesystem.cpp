// The filesystem backend: blobs under STORAGE_PATH/layers/<hex>, published by
// rename from STORAGE_PATH/staging so nginx never serves a partial file, and
// served by nginx itself from the internal location /_storage/.

#include "storage/filesystem.hpp"

#include "storage/layout.hpp"
#include "util/files.hpp"

#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

namespace nixery {

namespace fs = std::filesystem;

namespace {

class FilesystemBackend final : public StorageBackend {
public:
    explicit FilesystemBackend(fs::path root)
        : m_root(std::move(root)), m_staging(m_root / k_staging_dir) {}

    std::string describe() const override { return "filesystem " + m_root.string(); }

    Result<void> check() override {
        for (const auto dir : {k_blob_dir, k_staging_dir, k_cache_dir}) {
            TRY(make_dirs(m_root / dir));
        }
        // Prove we can publish: write and remove a probe through the same path.
        TRY_ASSIGN(auto probe, StagingFile::create(m_staging));
        TRY(write_all(probe.fd(), "probe", probe.path()));
        return probe.finish();
    }

    const fs::path& staging_dir() const override { return m_staging; }

    // The worker sends the Content-Type with X-Accel-Redirect; files have none.
    Result<void> persist(StagingFile staged, std::string_view key, std::string_view) override {
        TRY(checked(key));
        const auto target = m_root / std::string(key);
        TRY(make_dirs(target.parent_path()));
        return staged.commit(target);
    }

    Result<void> put(std::string_view key, std::string_view data, std::string_view) override {
        TRY(checked(key));
        const auto target = m_root / std::string(key);
        TRY(make_dirs(target.parent_path()));
        return write_file_atomic(m_staging, target, data);
    }

    Result<std::optional<std::string>> fetch(std::string_view key) override {
        TRY(checked(key));
        const auto path = m_root / std::string(key);
        if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
            return std::optional<std::string>();
        }
        TRY_ASSIGN(auto data, read_file(path));
        return std::optional<std::string>(std::move(data));
    }

    // Files keep no content type.
    Result<std::optional<ObjectInfo>> stat(std::string_view key) override {
        TRY(checked(key));
        const auto path = m_root / std::string(key);
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            return std::optional<ObjectInfo>(
                ObjectInfo{static_cast<std::uint64_t>(st.st_size), {}, st.st_mtime});
        }
        if (errno == ENOENT) {
            return std::optional<ObjectInfo>();
        }
        return fail("stat \"" + path.string() + "\" failed: " + errno_text(errno));
    }

    Result<BlobLocation> locate(std::string_view key) override {
        TRY(checked(key));
        return BlobLocation{BlobLocation::Kind::accel_redirect, "/_storage/" + std::string(key)};
    }

    Result<void> remove(std::string_view key) override {
        TRY(checked(key));
        const auto path = m_root / std::string(key);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return fail("unlink \"" + path.string() + "\" failed: " + errno_text(errno));
        }
        return {};
    }

    Result<std::vector<StoredObject>> list(std::string_view prefix) override {
        std::vector<StoredObject> out;
        const auto slash = prefix.rfind('/');
        const auto dir =
            m_root / std::string(prefix.substr(0, slash == std::string_view::npos ? 0 : slash));
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (!it->is_regular_file(ec)) {
                continue;
            }
            auto key = it->path().lexically_relative(m_root).string();
            if (key.compare(0, prefix.size(), prefix) != 0) {
                continue;
            }
            struct stat st {};
            if (::stat(it->path().c_str(), &st) != 0) {
                continue; // removed meanwhile
            }
            out.push_back({std::move(key), static_cast<std::uint64_t>(st.st_size), st.st_mtime});
        }
        if (ec && ec != std::errc::no_such_file_or_directory) {
            return fail("list \"" + dir.string() + "\" failed: " + ec.message());
        }
        return out;
    }

private:
    // Keys come from digests and hashes the callers computed, never from a
    // request; refusing anything else keeps a bug from escaping the root.
    static Result<void> checked(std::string_view key) {
        if (key.empty() || key.front() == '/' || key.find("..") != std::string_view::npos ||
            key.find('\0') != std::string_view::npos) {
            return fail("storage key \"" + std::string(key) + "\" is not a relative object name");
        }
        return {};
    }

    fs::path m_root;
    fs::path m_staging;
};

} // namespace

std::unique_ptr<StorageBackend> make_filesystem_storage(const fs::path& root) {
    return std::make_unique<FilesystemBackend>(root);
}

} // namespace nixery
