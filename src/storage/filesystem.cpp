// The filesystem backend: blobs under STORAGE_PATH/layers/<hex>, published by
// rename from STORAGE_PATH/staging so nginx never serves a partial file, and
// served by nginx itself: through the internal location /_storage/ when the
// pool answers, and straight from the links STATE_DIR/served/blobs/<hex>.<kind>
// (symbolic, to the blob) once the pool has let it (serve_directly()), and
// manifests from STATE_DIR/served/manifests/<hex>/<minute>.<kind> for the
// minute of nginx's clock the pool saw (serve_manifest_directly()). A link
// only ever names a blob the pool checked, and its extension is the blob's
// media type for nginx (the `types` of nginx/storage-location.conf.in).

#include "storage/filesystem.hpp"

#include "core/manifest.hpp"
#include "storage/layout.hpp"
#include "util/files.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nixery {

namespace fs = std::filesystem;

namespace {

// Media types nginx serves blobs with, and the extension of their links
// (nginx/storage-location.conf.in has the same tables).
constexpr std::array<std::pair<std::string_view, std::string_view>, 3> k_served_kinds{{
    {media_type::layer_blob, "layer"},
    {media_type::docker_config, "docker-config"},
    {media_type::oci_config, "oci-config"},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> k_served_manifest_kinds{{
    {media_type::docker_manifest, "docker-manifest"},
    {media_type::oci_manifest, "oci-manifest"},
    {media_type::oci_index, "oci-index"},
    {media_type::docker_manifest_list, "docker-list"},
}};

template <typename Kinds>
const std::string_view* extension_of(const Kinds& kinds, std::string_view media_type) {
    const auto kind = std::find_if(kinds.begin(), kinds.end(),
                                   [&](const auto& k) { return k.first == media_type; });
    return kind == kinds.end() ? nullptr : &kind->second;
}

// nginx's $nixery_use_minute: `YYYY-MM-DDTHH:MM`, part of a link's name.
bool is_nginx_minute(std::string_view minute) {
    constexpr std::string_view shape = "0000-00-00T00:00";
    if (minute.size() != shape.size()) {
        return false;
    }
    for (std::size_t i = 0; i < shape.size(); ++i) {
        const bool digit = minute[i] >= '0' && minute[i] <= '9';
        if (shape[i] == '0' ? !digit : minute[i] != shape[i]) {
            return false;
        }
    }
    return true;
}

class FilesystemBackend final : public StorageBackend {
public:
    FilesystemBackend(fs::path root, fs::path served)
        : m_root(std::move(root)), m_staging(m_root / k_staging_dir), m_served(std::move(served)) {}

    std::string describe() const override { return "filesystem " + m_root.string(); }

    Result<void> check() override {
        for (const auto dir : {k_blob_dir, k_staging_dir, k_cache_dir}) {
            TRY(make_dirs(m_root / dir));
        }
        if (!m_served.empty()) {
            TRY(make_dirs(m_served / "blobs"));
            TRY(make_dirs(m_served / "manifests"));
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

    Result<bool> read(std::string_view key, const ObjectSink& sink) override {
        TRY(checked(key));
        const auto path = m_root / std::string(key);
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            if (errno == ENOENT) {
                return false;
            }
            return fail("open \"" + path.string() + "\" failed: " + errno_text(errno));
        }
        TRY(read_chunks(fd.get(), path, sink));
        return true;
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

    Result<void> serve_directly(std::string_view key, std::string_view media_type) override {
        TRY(checked(key));
        const auto* extension = extension_of(k_served_kinds, media_type);
        if (m_served.empty() || extension == nullptr || !is_blob(key)) {
            return {};
        }
        return link_to(key, served_link(key.substr(k_blob_prefix.size()), *extension));
    }

    // STATE_DIR/served/manifests/<hex>/<minute>.<kind>: nginx looks for the
    // link of its current minute, so a link is used for that minute only
    // and the links of earlier minutes are only clutter, removed here.
    Result<void> serve_manifest_directly(std::string_view key, std::string_view media_type,
                                         std::string_view minute) override {
        TRY(checked(key));
        const auto* extension = extension_of(k_served_manifest_kinds, media_type);
        if (m_served.empty() || extension == nullptr || !is_blob(key)) {
            return {};
        }
        if (!is_nginx_minute(minute)) {
            return fail("\"" + std::string(minute) + "\" is not a minute of nginx's clock");
        }
        const auto dir = served_manifest_dir(key.substr(k_blob_prefix.size()));
        TRY(make_dirs(dir));
        const auto name = std::string(minute) + "." + std::string(*extension);
        TRY(link_to(key, dir / name));
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            if (entry.path().filename() != name) {
                TRY(unlink_if_present(entry.path()));
            }
        }
        return {};
    }

    // The links nginx serves the blob from go first: a link without its
    // blob only sends nginx back to the pool, a blob without its link is
    // not sent by nginx alone once it looked the link up again (it keeps
    // links open for a second: nginx/storage-location.conf.in).
    Result<void> remove(std::string_view key) override {
        TRY(checked(key));
        if (!m_served.empty() && is_blob(key)) {
            const auto hex = key.substr(k_blob_prefix.size());
            for (const auto& kind : k_served_kinds) {
                TRY(unlink_if_present(served_link(hex, kind.second)));
            }
            TRY(remove_manifest_links(served_manifest_dir(hex)));
        }
        return unlink_if_present(m_root / std::string(key));
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
    static bool is_blob(std::string_view key) {
        return key.substr(0, k_blob_prefix.size()) == k_blob_prefix;
    }

    fs::path served_link(std::string_view hex, std::string_view extension) const {
        return m_served / "blobs" / (std::string(hex) + "." + std::string(extension));
    }

    fs::path served_manifest_dir(std::string_view hex) const {
        return m_served / "manifests" / std::string(hex);
    }

    Result<void> link_to(std::string_view key, const fs::path& link) const {
        const auto target = m_root / std::string(key);
        if (::symlink(target.c_str(), link.c_str()) != 0 && errno != EEXIST) {
            return fail("symlink \"" + link.string() + "\" to \"" + target.string() +
                        "\" failed: " + errno_text(errno));
        }
        return {};
    }

    static Result<void> remove_manifest_links(const fs::path& dir) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            TRY(unlink_if_present(entry.path()));
        }
        // A link made meanwhile (ENOTEMPTY) dangles: nginx then asks the pool.
        if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
            return fail("rmdir \"" + dir.string() + "\" failed: " + errno_text(errno));
        }
        return {};
    }

    static Result<void> unlink_if_present(const fs::path& path) {
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return fail("unlink \"" + path.string() + "\" failed: " + errno_text(errno));
        }
        return {};
    }

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
    fs::path m_served; // empty: no links
};

} // namespace

std::unique_ptr<StorageBackend> make_filesystem_storage(const fs::path& root,
                                                        const fs::path& served) {
    return std::make_unique<FilesystemBackend>(root, served);
}

} // namespace nixery
