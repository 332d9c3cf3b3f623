// The S3 storage backend (see s3.cpp).
#pragma once

#include "storage/backend.hpp"

namespace nixery {

// Checks the settings (the endpoint URL, and that virtual-host addressing
// can work with it and the bucket's name); makes the staging directory
// under state_dir. Reachability and credentials are check()'s job.
Result<std::unique_ptr<StorageBackend>> make_s3_storage(const S3Settings& settings,
                                                        const std::filesystem::path& state_dir);

} // namespace nixery
