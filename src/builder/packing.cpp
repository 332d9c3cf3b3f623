#include "builder/packing.hpp"

#include "builder/records.hpp"
#include "core/manifest.hpp"
#include "pack/layer_writer.hpp"
#include "pack/store_paths.hpp"
#include "pack/top_layer.hpp"
#include "util/sha256.hpp"

namespace nixery {

Result<std::vector<LayerRecord>> pack_layer(StorageBackend& storage, BuildCache& cache,
                                            const std::vector<LayerForm>& forms,
                                            const std::vector<std::string>& paths, LayerKind kind,
                                            std::int64_t now) {
    std::vector<StagingFile> staged;
    std::vector<LayerOutput> outputs;
    staged.reserve(forms.size());
    for (const auto& form : forms) {
        TRY_ASSIGN(auto file, StagingFile::create(storage.staging_dir()));
        staged.push_back(std::move(file));
        outputs.push_back({staged.back().fd(), staged.back().path(), form.compression});
    }
    TRY_ASSIGN(auto writer, LayerWriter::open(std::move(outputs)));
    if (kind == LayerKind::top) {
        TRY_ASSIGN(const auto plan, plan_top_layer(paths));
        TRY(add_top_layer(*writer, plan));
    } else {
        TRY(add_store_paths(*writer, paths));
    }
    TRY_ASSIGN(const auto packed, writer->finish());
    std::vector<LayerRecord> records;
    for (std::size_t i = 0; i < forms.size(); ++i) {
        const auto& p = packed[i];
        TRY(storage.persist(std::move(staged[i]), blob_key(p.digest.substr(7)),
                            media_type::layer_blob));
        const LayerRecord record{p.digest, p.diff_id, p.size};
        TRY(cache.record_blob({p.digest, p.size, std::string(media_type::layer_blob)}, now));
        TRY(cache.record_layer(forms[i].key, record, now));
        TRY(storage.put(layer_record_key(forms[i].key), encode_layer_record(record),
                        "application/json"));
        records.push_back(record);
    }
    return records;
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
