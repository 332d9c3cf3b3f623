#include "builder/lookup.hpp"

#include "builder/records.hpp"
#include "util/log.hpp"

namespace nixery {

Result<std::optional<Found<ImageRecord>>> find_image(BuildCache& cache, StorageBackend& storage,
                                                     std::string_view closure_key) {
    using Answer = std::optional<Found<ImageRecord>>;
    TRY_ASSIGN(auto local, cache.find_image(closure_key));
    if (local) {
        return Answer(Found<ImageRecord>{std::move(*local), Origin::local});
    }
    auto shared = storage.fetch(image_record_key(closure_key));
    if (!shared) {
        // Absent as far as this build can tell; it builds the image itself.
        log::warn("reading shared image record failed", {{"error", shared.error().message}});
        return Answer();
    }
    if (!*shared) {
        return Answer();
    }
    auto record = decode_image_record(**shared);
    if (!record) {
        log::warn("ignoring malformed shared image record", {{"closure_key", closure_key}});
        return Answer();
    }
    return Answer(Found<ImageRecord>{std::move(*record), Origin::shared});
}

Result<std::optional<Found<LayerRecord>>> find_layer(BuildCache& cache, StorageBackend& storage,
                                                     std::string_view layer_key) {
    using Answer = std::optional<Found<LayerRecord>>;
    TRY_ASSIGN(auto local, cache.find_layer(layer_key));
    if (local) {
        return Answer(Found<LayerRecord>{std::move(*local), Origin::local});
    }
    TRY_ASSIGN(auto blob, storage.fetch(layer_record_key(layer_key)));
    if (!blob) {
        return Answer();
    }
    auto record = decode_layer_record(*blob);
    if (!record) {
        return Answer();
    }
    return Answer(Found<LayerRecord>{std::move(*record), Origin::shared});
}

} // namespace nixery
