#include "storage/backend.hpp"

#include "storage/filesystem.hpp"
#include "storage/gcs.hpp"
#include "storage/s3.hpp"

namespace nixery {

Result<std::unique_ptr<StorageBackend>> make_storage(const Config& config) {
    switch (config.storage) {
    case StorageKind::filesystem:
        return make_filesystem_storage(config.storage_path, config.state_dir / "served");
    case StorageKind::gcs:
        return make_gcs_storage(config.gcs, config.state_dir);
    case StorageKind::s3:
        return make_s3_storage(config.s3, config.state_dir);
    }
    return fail("unknown storage backend");
}

} // namespace nixery
