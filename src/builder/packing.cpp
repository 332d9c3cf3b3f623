#include "builder/packing.hpp"

#include "builder/records.hpp"
#include "core/manifest.hpp"
#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "pack/top_layer.hpp"
#include "util/sha256.hpp"

namespace nixery {

Result<LayerRecord> pack_layer(StorageBackend& storage, BuildCache& cache, std::string_view key,
                               const std::vector<std::string>& paths, LayerKind kind,
                               LayerCompression compression, std::int64_t now) {
    TRY_ASSIGN(auto staged, StagingFile::create(storage.staging_dir()));
    TRY_ASSIGN(auto writer,
               LayerWriter::open(staged.fd(), staged.path(), PackOptions{compression}));
    if (kind == LayerKind::top) {
        TRY_ASSIGN(const auto plan, plan_top_layer(paths));
        TRY(add_top_layer(*writer, plan));
    } else {
        TRY(add_store_paths(*writer, paths));
    }
    TRY_ASSIGN(const auto packed, writer->finish());
    TRY(storage.persist(std::move(staged), blob_key(packed.digest.substr(7)),
                        media_type::layer_blob));
    const LayerRecord record{packed.digest, packed.diff_id, packed.size};
    TRY(cache.record_blob({packed.digest, packed.size, std::string(media_type::layer_blob)}, now));
    TRY(cache.record_layer(key, record, now));
    TRY(storage.put(layer_record_key(key), encode_layer_record(record), "application/json"));
    return record;
}

Result<std::string> store_document(StorageBackend& storage, BuildCache& cache,
                                   std::string_view data, std::string_view media_type,
                                   std::int64_t now) {
    const auto digest = sha256_digest(data);
    const auto key = blob_key(digest.substr(7));
    TRY_ASSIGN(const bool stored, storage.exists(key));
    if (!stored) {
        TRY(storage.put(key, data, media_type));
    }
    TRY(cache.record_blob({digest, data.size(), std::string(media_type)}, now));
    return digest;
}

} // namespace nixery
