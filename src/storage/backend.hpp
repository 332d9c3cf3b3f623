// Where blobs and shared build-cache records live, and how clients get them.
// Keys are relative names such as "layers/<sha256 hex>" (every blob: layers,
// configs, manifests) and "cache/…" (records other instances can reuse);
// storage/layout.hpp lists them all.
// Implementations: the filesystem (served by nginx via X-Accel-Redirect),
// Google Cloud Storage and S3 (served by redirects to signed URLs).
#pragma once

#include "config.hpp"
#include "storage/layout.hpp"
#include "util/files.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

// How a client gets a stored object.
struct BlobLocation {
    enum class Kind {
        accel_redirect, // nginx serves `location`, an internal URI
        redirect,       // the client follows a 307 to `location`
    } kind = Kind::accel_redirect;
    std::string location;
};

// What stat() knows of an object without reading it.
struct ObjectInfo {
    std::uint64_t size = 0;
    // As given to put()/persist(); object stores keep it, the filesystem
    // does not (empty).
    std::string content_type;
    std::int64_t modified = 0; // Unix seconds
};

struct StoredObject {
    std::string key;
    std::uint64_t size = 0;
    std::int64_t modified = 0; // Unix seconds
};

// Takes the pieces of an object read() streams; an error stops the read and
// becomes its result.
using ObjectSink = std::function<Result<void>(std::string_view)>;

class StorageBackend {
public:
    virtual ~StorageBackend() = default;

    // e.g. "filesystem /srv/nixery", for logs and the start page.
    virtual std::string describe() const = 0;
    // Checks the backend is usable (writable, reachable, credentials
    // accepted); run once at start-up.
    virtual Result<void> check() = 0;
    // Checks that clients can fetch what locate() gives them; run by the
    // server at start-up (gc and local builds hand out no locations).
    virtual Result<void> check_client_access() { return {}; }
    // Where packers create staging files for persist().
    virtual const std::filesystem::path& staging_dir() const = 0;

    // Publishes a complete staging file under `key`, atomically: readers see
    // the whole object or none. Consumes the staging file. Object stores
    // keep `content_type` and send it when a client follows a redirect.
    virtual Result<void> persist(StagingFile staged, std::string_view key,
                                 std::string_view content_type) = 0;
    virtual Result<void> put(std::string_view key, std::string_view data,
                             std::string_view content_type) = 0;
    // A small object's content; nullopt when it does not exist.
    virtual Result<std::optional<std::string>> fetch(std::string_view key) = 0;
    // Streams an object of any size (a layer) to `sink` in pieces, never
    // holding it whole; false when it does not exist. A transfer cut after
    // some pieces went to `sink` is an error, not retried (the sink would
    // get them twice); the caller starts over.
    virtual Result<bool> read(std::string_view key, const ObjectSink& sink) = 0;
    // An object's size and content type, without its content; nullopt when
    // it does not exist. One metadata request for object stores.
    virtual Result<std::optional<ObjectInfo>> stat(std::string_view key) = 0;
    Result<bool> exists(std::string_view key) {
        TRY_ASSIGN(const auto info, stat(key));
        return info.has_value();
    }
    // How to serve an object; the caller checked that it exists. For a
    // redirect, a URL good for GET only (signatures cover the method).
    virtual Result<BlobLocation> locate(std::string_view key) = 0;
    // Lets nginx send the stored object `key` by itself from now on, with
    // the Content-Type `media_type` (nginx/storage-location.conf.in): only
    // the filesystem backend can, for the types nginx knows; elsewhere this
    // does nothing. The caller checked that the object exists and is a blob
    // of that type. Failing is harmless: the pool keeps answering.
    virtual Result<void> serve_directly(std::string_view key, std::string_view media_type) {
        (void)key;
        (void)media_type;
        return {};
    }
    // Lets nginx send the stored manifest `key` by itself while its clock
    // reads `minute` (nginx's $nixery_use_minute, `YYYY-MM-DDTHH:MM`, which
    // it passes with each request): the next minute's first request comes
    // to the pool again, which records the use for gc. Only the filesystem
    // backend can; elsewhere this does nothing. The caller checked that the
    // object is a manifest of that type. Failing is harmless.
    virtual Result<void> serve_manifest_directly(std::string_view key, std::string_view media_type,
                                                 std::string_view minute) {
        (void)key;
        (void)media_type;
        (void)minute;
        return {};
    }
    // Removing an absent object is not an error; removing a blob removes
    // what lets nginx serve it directly.
    virtual Result<void> remove(std::string_view key) = 0;
    virtual Result<std::vector<StoredObject>> list(std::string_view prefix) = 0;
};

inline std::string blob_key(std::string_view hex) {
    return std::string(k_blob_prefix) + std::string(hex);
}

// The backend the configuration names. Opening may fail (bad settings,
// unreadable credentials); reachability is check()'s job.
Result<std::unique_ptr<StorageBackend>> make_storage(const Config& config);

} // namespace nixery
