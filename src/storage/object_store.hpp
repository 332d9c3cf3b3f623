// What the object-store backends (gcs.cpp, s3.cpp) share: the key check,
// opening a staging file for streaming, and the start-up write probe. Not
// for the filesystem backend, which renames instead of uploading.
#pragma once

#include "storage/backend.hpp"

#include <cstdint>

namespace nixery {

// Keys come from digests and hashes the callers computed, never from a
// request; anything else is a bug to stop before it names a wrong object.
Result<void> check_object_key(std::string_view key);

// A staging file opened for reading, and its size, for streaming uploads.
struct UploadSource {
    UniqueFd fd;
    std::uint64_t size = 0;
};
Result<UploadSource> open_upload_source(const StagingFile& staged);

// Writes and deletes "probes/<host>-<pid>": proves at start-up that the
// credentials may write and delete, not only read.
Result<void> write_probe(StorageBackend& storage);

} // namespace nixery
