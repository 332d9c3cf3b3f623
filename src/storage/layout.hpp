// The layout of a bucket (or a filesystem backend's STORAGE_PATH): every key
// prefix an instance writes, in one place, so a reader sees the whole bucket
// here and two writers cannot drift apart. Instances sharing a bucket depend
// on these staying as they are. Names only: what goes under each prefix is
// the business of its owner (named below).
//
//   layers/<sha256 hex>          every blob: layers, configs, manifests
//   cache/layers/<key>.json      shared layer records      (builder/records)
//   cache/images/<key>.json      shared image records      (builder/records)
//   cache/indexes/<hex>.json     shared index records      (builder/records)
//   cache/used/<manifest hex>    use markers, for gc       (builder/usage)
//   probes/<host>-<pid>          start-up write probes     (storage/object_store)
//   staging/                     filesystem backend only: files before their rename
#pragma once

#include <string_view>

namespace nixery {

inline constexpr std::string_view k_blob_prefix = "layers/";
inline constexpr std::string_view k_layer_records = "cache/layers/";
inline constexpr std::string_view k_image_records = "cache/images/";
inline constexpr std::string_view k_index_records = "cache/indexes/";
inline constexpr std::string_view k_use_markers = "cache/used/";
inline constexpr std::string_view k_probe_prefix = "probes/";

// The directories a filesystem backend keeps under its root.
inline constexpr std::string_view k_blob_dir = "layers";
inline constexpr std::string_view k_cache_dir = "cache";
inline constexpr std::string_view k_staging_dir = "staging";

} // namespace nixery
