// The Google Cloud Storage backend (see gcs.cpp).
#pragma once

#include "storage/backend.hpp"

namespace nixery {

// Reads the service-account key when one is configured and makes the
// staging directory under state_dir. Reachability is check()'s job.
Result<std::unique_ptr<StorageBackend>> make_gcs_storage(const GcsSettings& settings,
                                                         const std::filesystem::path& state_dir);

} // namespace nixery
