#include "builder/usage.hpp"

#include "builder/records.hpp"
#include "util/log.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <ctime>

namespace nixery {

namespace {

constexpr std::int64_t k_interval = std::chrono::seconds(k_shared_use_interval).count();

// Whether this instance wrote no marker of `digest` within the interval.
Result<bool> marker_due(BuildCache& cache, std::string_view digest, std::int64_t now) {
    TRY_ASSIGN(const auto written, cache.shared_use_written(digest));
    return !written ||
           !within_ttl(std::chrono::seconds(now - *written), std::chrono::seconds(k_interval));
}

// The row (of shared_uses) that spaces the daily check of an image's
// storage (record_image_use), apart from its marker's row: a pull by digest
// writes the marker without checking anything (record_manifest_pull), and
// containerd GETs by digest every manifest it resolves by tag, as every
// client does the manifests an index lists. Sharing the marker's row, such
// a pull reaching the pool first on a new day put the check off by a day,
// every day.
std::string check_row(std::string_view closure_key) {
    return "check:" + std::string(closure_key);
}

// Two threads may both find a marker due and both write it: harmless, the
// marker is only a time.
Result<void> write_marker(BuildCache& cache, StorageBackend& storage, std::string_view digest,
                          std::int64_t now) {
    TRY(storage.put(use_marker_key(digest), std::to_string(now) + "\n", "text/plain"));
    return cache.record_shared_use_written(digest, now);
}

} // namespace

std::string use_marker_key(std::string_view manifest_digest) {
    const auto colon = manifest_digest.find(':');
    return std::string(k_use_markers) + std::string(colon == std::string_view::npos
                                                        ? manifest_digest
                                                        : manifest_digest.substr(colon + 1));
}

SharedImage record_image_use(BuildCache& cache, StorageBackend& storage,
                             std::string_view closure_key, const ImageRecord& image,
                             std::int64_t now) {
    auto gone = false;
    const auto record = [&]() -> Result<void> {
        TRY(cache.touch_image(closure_key, now));
        TRY_ASSIGN(const bool due, marker_due(cache, check_row(closure_key), now));
        if (!due) {
            return {};
        }
        // Once a day per image: is what this instance remembers still stored?
        // Its record, and every blob its manifests name: a rebuild does not
        // upload again what it finds stored, so another instance's gc may
        // have taken documents or layers meanwhile (a race gc/collector.cpp
        // cannot close across instances), and a blob lost for good makes
        // every pull fail until the image is built again, which this
        // starts. The marker goes first: gc looks at
        // it right after it deletes the record (gc/collector.cpp), so
        // either gc puts the record back or this finds it gone.
        // Only a use found stored counts as this day's marker here, so the
        // next use looks again until the image is built again.
        TRY(storage.put(use_marker_key(image.docker_digest), std::to_string(now) + "\n",
                        "text/plain"));
        // Read, not only looked for: a record that cannot be read (damaged)
        // hides the image from gc on the other instances, which then keep
        // every blob until it is written anew (gc/collector.cpp).
        TRY_ASSIGN(const auto shared_record, storage.fetch(image_record_key(closure_key)));
        bool stored = shared_record && decode_image_record(*shared_record).has_value();
        auto blobs = image.blobs; // a shared record's; this instance's own are in the database
        if (blobs.empty()) {
            TRY_ASSIGN(blobs, cache.image_blobs(closure_key));
        }
        blobs.insert(blobs.end(), {image.config_digest, image.docker_digest, image.oci_digest});
        std::sort(blobs.begin(), blobs.end());
        blobs.erase(std::unique(blobs.begin(), blobs.end()), blobs.end());
        for (const auto& digest : blobs) {
            if (!stored) {
                break;
            }
            if (digest.size() > 7) { // "sha256:" and the hex
                TRY_ASSIGN(stored, storage.exists(blob_key(digest.substr(7))));
            }
        }
        if (!stored) {
            gone = true;
            return {};
        }
        TRY(cache.record_shared_use_written(check_row(closure_key), now));
        return cache.record_shared_use_written(image.docker_digest, now);
    };
    if (auto r = record(); !r) {
        log::warn("recording a use failed",
                  {{"closure_key", closure_key}, {"error", r.error().message}});
    }
    if (gone) {
        log::warn("the image's shared record or documents are gone (an instance sharing the "
                  "storage collected them): building it again",
                  {{"closure_key", closure_key}});
        return SharedImage::gone;
    }
    return SharedImage::present;
}

void record_manifest_pull(BuildCache& cache, StorageBackend& storage, std::string_view digest) {
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    const auto record = [&]() -> Result<void> {
        TRY_ASSIGN(const auto image, cache.image_with_manifest(digest));
        if (image) {
            TRY(cache.touch_image(*image, now));
        }
        // An index: a use of every platform's image it lists.
        TRY_ASSIGN(const auto children, cache.index_children(digest));
        for (const auto& child : children) {
            TRY_ASSIGN(const auto listed, cache.image_with_manifest(child));
            if (listed) {
                TRY(cache.touch_image(*listed, now));
            }
        }
        TRY_ASSIGN(const bool due, marker_due(cache, digest, now));
        return due ? write_marker(cache, storage, digest, now) : Result<void>();
    };
    if (auto r = record(); !r) {
        log::warn("recording a pull by digest failed",
                  {{"digest", digest}, {"error", r.error().message}});
    }
}

} // namespace nixery
