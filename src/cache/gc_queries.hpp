// The queries of garbage collection (`nixery gc`): the images this instance
// knows and when it last used them, the blobs they reference, and the
// deletion of the rows that describe what gc removes or no longer needs.
// Deciding what to remove and when it is safe is the collector's job
// (gc/collector.hpp); this file only reads and writes rows. Times are passed
// in (Unix seconds).
#pragma once

#include "cache/db.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

struct LocalImage {
    std::string closure_key;
    std::int64_t last_used_at = 0;
    std::string docker_digest; // its manifests'
    std::string oci_digest;
};

// A build whose row says it runs.
struct OpenBuild {
    std::int64_t id = 0;
    std::string image;
    std::string image_key;
    double started_at = 0;
};

class GcQueries {
public:
    explicit GcQueries(Db& db) : m_db(db) {}

    // Every image of this instance.
    Result<std::vector<LocalImage>> images();
    // The closure keys of images last used here before `cutoff`.
    Result<std::set<std::string>> images_unused_since(std::int64_t cutoff);
    // closure key → every digest the image references.
    Result<std::map<std::string, std::vector<std::string>>> image_blobs();
    // manifest digest → the indexes that list it (sql/006_image_children.sql).
    Result<std::map<std::string, std::vector<std::string>>> indexes_by_manifest();
    // The image names builds of this image were requested as, for people.
    Result<std::set<std::string>> image_names(std::string_view closure_key);

    // Whether any image still references `digest`, or it is an index that
    // lists a manifest of an image still recorded.
    Result<bool> is_referenced(std::string_view digest);
    // Every digest the blobs and layers tables know, with its size.
    Result<std::map<std::string, std::uint64_t>> recorded_blobs();
    // Deletes the blobs row, the layers rows and (of an index) the
    // image_children rows of `digest`.
    Result<void> forget_blob(std::string_view digest);

    // Evaluations whose image is gone (a later request evaluates again).
    Result<int> forget_dangling_evaluations();
    // Remembered failures whose time is over.
    Result<int> forget_expired_failures(std::int64_t now);
    // Finished builds that started before `before`, except the newest
    // `keep_last` (the start page's history).
    Result<int> forget_builds(std::int64_t before, int keep_last);
    // Tags last pulled before `before` (tags/list keeps "latest" anyway).
    Result<int> forget_tags(std::int64_t before);
    // When markers were written before `before`: they no longer hold a new
    // one back (builder/usage.hpp).
    Result<int> forget_shared_uses(std::int64_t before);

    // The pid of build `id` while its row says it is running; nullopt when it
    // finished or there is no such build.
    Result<std::optional<std::int64_t>> running_build_pid(std::int64_t id);
    // The builds whose rows say they run.
    Result<std::vector<OpenBuild>> open_builds();
    // Ends an open build's row as interrupted (503, `error`) at `now`;
    // false when it had ended meanwhile.
    Result<bool> end_interrupted_build(std::int64_t id, double now, std::string_view error);

private:
    Db& m_db;
};

} // namespace nixery
