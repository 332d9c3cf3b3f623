// The filesystem storage backend (see filesystem.cpp).
#pragma once

#include "storage/backend.hpp"

namespace nixery {

std::unique_ptr<StorageBackend> make_filesystem_storage(const std::filesystem::path& root);

} // namespace nixery
