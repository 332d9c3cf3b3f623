// Build-cache records shared through storage ("cache/layers/<key>.json",
// "cache/images/<key>.json", "cache/indexes/<hex>.json"), so instances
// sharing a bucket reuse each other's work and their gc keeps what any of
// them serves. JSON encoding only; pure.
#pragma once

#include "cache/build_cache.hpp"
#include "storage/layout.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

std::string layer_record_key(std::string_view layer_key);
std::string image_record_key(std::string_view closure_key);
// Of the image index `index_digest` ("sha256:<hex>").
std::string index_record_key(std::string_view index_digest);
// The key of a record object under `prefix` ("cache/images/<key>.json" →
// "<key>"); empty when `object` is not one.
std::string record_name(std::string_view object, std::string_view prefix);

std::string encode_layer_record(const LayerRecord& layer);
std::optional<LayerRecord> decode_layer_record(std::string_view json);

std::string encode_image_record(const ImageRecord& image);
std::optional<ImageRecord> decode_image_record(std::string_view json);

// An index's record: the digests of the manifests it lists, which gc on
// any instance keeps it with.
std::string encode_index_record(const std::vector<std::string>& manifests);
std::optional<std::vector<std::string>> decode_index_record(std::string_view json);

} // namespace nixery
