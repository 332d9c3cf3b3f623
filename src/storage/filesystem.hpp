// The filesystem storage backend (see filesystem.cpp).
#pragma once

#include "storage/backend.hpp"

namespace nixery {

// Blobs under `root`; `served` is where serve_directly() leaves the links
// nginx sends blobs by digest from (STATE_DIR/served: each instance sharing
// a STORAGE_PATH has its own). Empty: no links (tools, tests).
std::unique_ptr<StorageBackend> make_filesystem_storage(const std::filesystem::path& root,
                                                        const std::filesystem::path& served = {});

} // namespace nixery
