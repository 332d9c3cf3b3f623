#include "storage/backend.hpp"

#include "storage/filesystem.hpp"

namespace nixery {

Result<std::unique_ptr<StorageBackend>> make_storage(const Config& config) {
    switch (config.storage) {
    case StorageKind::filesystem:
        return make_filesystem_storage(config.storage_path);
    case StorageKind::gcs:
        return fail("NIXERY_STORAGE_BACKEND=gcs is not available in this build yet");
    case StorageKind::s3:
        return fail("NIXERY_STORAGE_BACKEND=s3 is not available in this build yet");
    }
    return fail("unknown storage backend");
}

} // namespace nixery
