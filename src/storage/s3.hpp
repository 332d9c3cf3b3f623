// The S3 storage backend (see s3.cpp).
#pragma once

#include "storage/backend.hpp"

#include <cstdint>

namespace nixery {

// The size of each part of a multipart upload of `size` bytes: 8 MiB, or
// more where 10,000 parts (S3's limit) of 8 MiB would not hold it.
std::uint64_t s3_part_size(std::uint64_t size);

// Checks the settings (the endpoint URL, and that virtual-host addressing
// can work with it and the bucket's name); makes the staging directory
// under state_dir. Reachability and credentials are check()'s job.
Result<std::unique_ptr<StorageBackend>> make_s3_storage(const S3Settings& settings,
                                                        const std::filesystem::path& state_dir);

} // namespace nixery
