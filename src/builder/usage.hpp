// Uses of images, which decide what `nixery gc` keeps (gc/collector.hpp). A
// use is a manifest served, by tag or by digest. It moves the image's last
// use in this instance's SQLite (to within a minute), and, at most once per
// k_shared_use_interval per manifest and instance, writes the marker
// "cache/used/<manifest hex>" to storage. Instances sharing a bucket (or a
// STORAGE_PATH) each know only their own SQLite; the markers are how gc on
// one of them learns that another still serves an image. Failing to record
// a use is logged here and never fails the request.
#pragma once

#include "cache/build_cache.hpp"
#include "storage/backend.hpp"
#include "storage/layout.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace nixery {

// A marker is written again once the last one this instance wrote is this
// old, so the newest marker of an image in use is never older than this;
// gc allows for that when it judges a marker (gc/collector.hpp).
inline constexpr std::chrono::hours k_shared_use_interval{24};

// "cache/used/<hex>" for the manifest digest "sha256:<hex>".
std::string use_marker_key(std::string_view manifest_digest);

enum class SharedImage {
    present,
    gone, // its shared record is gone: another instance's gc collected it
};

// Records a use of the image `closure_key` (`image`) served from this
// instance's cache. Once a day per image (spaced by a row of shared_uses of
// its own, "check:<closure key>", not by the marker's, which a pull by
// digest also writes) it writes the marker and checks that the image's
// shared record and blobs are still stored: `gone` means this instance's rows describe
// blobs that may be deleted, and the caller should forget them and build
// the image again.
SharedImage record_image_use(BuildCache& cache, StorageBackend& storage,
                             std::string_view closure_key, const ImageRecord& image,
                             std::int64_t now);

// Records a pull of the manifest `digest` by digest (the registry checked
// that it is stored): a use of the image it belongs to here (of each image
// an index lists), and a marker
// every instance's gc sees, even when this instance never built or served
// that image by tag.
void record_manifest_pull(BuildCache& cache, StorageBackend& storage, std::string_view digest);

} // namespace nixery
