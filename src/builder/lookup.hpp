// Finding what was built before: images and layers in this instance's
// database, or in the records another instance sharing the storage wrote
// (builder/records.hpp). These functions only read; taking a shared record
// over, touching it and recording uses are the caller's separate steps.
#pragma once

#include "cache/build_cache.hpp"
#include "storage/backend.hpp"

#include <optional>
#include <string_view>

namespace nixery {

enum class Origin {
    local,  // this instance's database
    shared, // a record in storage, written by an instance sharing it
};

template <typename Record> struct Found {
    Record record;
    Origin origin;
};

// The image with outputs `closure_key`, or nullopt. A shared record that
// cannot be read or parsed counts as absent (another build will replace it).
Result<std::optional<Found<ImageRecord>>> find_image(BuildCache& cache, StorageBackend& storage,
                                                     std::string_view closure_key);

// The layer with key `layer_key` (core/cache_keys.hpp), or nullopt. Whether
// its blob is still stored is not checked here.
Result<std::optional<Found<LayerRecord>>> find_layer(BuildCache& cache, StorageBackend& storage,
                                                     std::string_view layer_key);

} // namespace nixery
