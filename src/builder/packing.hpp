// Packing: store paths into a layer blob (or the top layer of symlinks to
// the packages), and small documents (configs, manifests) into blobs; each
// stored under its digest and recorded locally and, for layers, as a shared
// record for instances sharing the storage. Callers hold the layer's lock
// and k_gc_lock (builder/gc_lock.hpp).
#pragma once

#include "cache/build_cache.hpp"
#include "core/manifest.hpp"
#include "storage/backend.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

enum class LayerKind {
    store_paths, // the store paths themselves
    top,         // /bin and friends: symlinks into the packages `paths` are
};

// One compressed form of a layer: its key (core/cache_keys.hpp) and how it
// is compressed.
struct LayerForm {
    std::string key;
    LayerCompression compression = LayerCompression::gzip;
};

// Packs `paths` into each of `forms` (at least one) in one walk of the
// files, and records each; the records are in the order of `forms`.
Result<std::vector<LayerRecord>> pack_layer(StorageBackend& storage, BuildCache& cache,
                                            const std::vector<LayerForm>& forms,
                                            const std::vector<std::string>& paths, LayerKind kind,
                                            std::int64_t now);

// Stores `data` as a blob (unless stored already) and records it; returns
// its digest.
Result<std::string> store_document(StorageBackend& storage, BuildCache& cache,
                                   std::string_view data, std::string_view media_type,
                                   std::int64_t now);

} // namespace nixery
