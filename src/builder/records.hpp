// Build-cache records shared through storage ("cache/layers/<key>.json",
// "cache/images/<key>.json"), so instances sharing a bucket reuse each
// other's work. JSON encoding only; pure.
#pragma once

#include "cache/build_cache.hpp"
#include "storage/layout.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace nixery {

std::string layer_record_key(std::string_view layer_key);
std::string image_record_key(std::string_view closure_key);
// The key of a record object under `prefix` ("cache/images/<key>.json" →
// "<key>"); empty when `object` is not one.
std::string record_name(std::string_view object, std::string_view prefix);

std::string encode_layer_record(const LayerRecord& layer);
std::optional<LayerRecord> decode_layer_record(std::string_view json);

std::string encode_image_record(const ImageRecord& image);
std::optional<ImageRecord> decode_image_record(std::string_view json);

} // namespace nixery
