// The build cache's queries: which images, layers and blobs exist, what an
// evaluation gave, which builds ran and which failures to remember. Keys are
// computed by the builder; this file only stores and finds them. Times are
// passed in (Unix seconds) so the cache has no clock of its own.
#pragma once

#include "cache/db.hpp"
#include "core/failure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nixery {

struct BlobRecord {
    std::string digest;
    std::uint64_t size = 0;
    std::string media_type;
};

struct LayerRecord {
    std::string digest;
    std::string diff_id;
    std::uint64_t size = 0;
};

struct ImageRecord {
    std::string config_digest;
    std::string docker_manifest;
    std::string docker_digest;
    std::string oci_manifest;
    std::string oci_digest;
    std::vector<std::string> blobs; // every digest the image references
};

struct EvaluationRecord {
    std::string closure_key;
    std::int64_t evaluated_at = 0;
};

struct BuildRecord {
    std::int64_t id = 0;
    std::string image;
    std::string tag;
    double started_at = 0;
    std::optional<double> duration;
    int layers_built = 0;
    int layers_reused = 0;
    std::optional<int> status;
    std::string error;
};

// Deletes the images (and, by cascade, their image_blobs rows) and the
// evaluations that lead to them, in one transaction: for the builder (an
// image whose shared record is gone) and for gc.
Result<void> forget_images(Db& db, const std::vector<std::string>& closure_keys);

class BuildCache {
public:
    explicit BuildCache(Db db) : m_db(std::move(db)) {}
    Db& db() { return m_db; }

    Result<std::optional<BlobRecord>> find_blob(std::string_view digest);
    Result<void> record_blob(const BlobRecord& blob, std::int64_t now);

    Result<std::optional<LayerRecord>> find_layer(std::string_view layer_key);
    Result<void> record_layer(std::string_view layer_key, const LayerRecord& layer,
                              std::int64_t now);

    // Without its blobs (image_blobs() has them).
    Result<std::optional<ImageRecord>> find_image(std::string_view closure_key);
    // Every digest the image references: layers, configs, manifests.
    Result<std::vector<std::string>> image_blobs(std::string_view closure_key);
    // Records an image; `store_paths` (its closure, when it was built here)
    // are what `nixery gc` with NIXERY_NIX_GC may let Nix delete once no
    // image needs them (sql/004_store_paths.sql).
    Result<void> record_image(std::string_view closure_key, const ImageRecord& image,
                              std::int64_t now, const std::vector<std::string>& store_paths = {});
    // Records a use of the image; to within a minute, so that serving a
    // cached image does not write to the database on every request.
    Result<void> touch_image(std::string_view closure_key, std::int64_t now);
    // The image whose Docker or OCI manifest has `digest`; nullopt when this
    // instance has none.
    Result<std::optional<std::string>> image_with_manifest(std::string_view digest);
    // Records that the index `index_digest` lists the manifests `manifests`
    // (sql/006_image_children.sql).
    Result<void> record_index(std::string_view index_digest,
                              const std::vector<std::string>& manifests);
    // The manifests the index `digest` lists; none when it is no index
    // this instance recorded.
    Result<std::vector<std::string>> index_children(std::string_view digest);
    // Forgets the image (with its image_blobs rows) and the evaluations that
    // lead to it: the next request for it evaluates and builds again.
    Result<void> forget_image(std::string_view closure_key);

    // When this instance last wrote the shared use marker of the manifest
    // `digest` (builder/usage.hpp); nullopt when never.
    Result<std::optional<std::int64_t>> shared_use_written(std::string_view digest);
    Result<void> record_shared_use_written(std::string_view digest, std::int64_t now);

    Result<std::optional<EvaluationRecord>> find_evaluation(std::string_view image_key);
    Result<void> record_evaluation(std::string_view image_key, std::string_view closure_key,
                                   std::int64_t now);

    // Records a pull of name:tag (to within a minute, as touch_image). A
    // name keeps its k_max_tags_per_name most recently pulled tags; a new
    // one pushes the oldest out.
    static constexpr int k_max_tags_per_name = 100;
    Result<void> record_tag(std::string_view name, std::string_view tag, std::int64_t now);
    Result<std::vector<std::string>> tags(std::string_view name);

    // The history keeps the k_build_history newest builds (and any still
    // open): a build is one request away for anyone (a new package name
    // fails one), and gc, which prunes by age, runs once a day.
    static constexpr std::int64_t k_build_history = 10000;
    Result<std::int64_t> start_build(std::string_view image, std::string_view tag,
                                     std::string_view image_key, double now);
    Result<void> finish_build(std::int64_t id, double duration, int layers_built, int layers_reused,
                              int status, std::string_view error);
    // Newest first.
    enum class Builds { all, failed };
    Result<std::vector<BuildRecord>> recent_builds(int limit, Builds which = Builds::all);
    Result<std::vector<BuildRecord>> builds_of(std::string_view image, std::string_view tag);

    // A failure is kept without its internal text (logged where it
    // happened); one found is marked `remembered`. Those expired by `now`,
    // and those expiring after `not_after` (remembered before the wall
    // clock stepped back), go meanwhile, for the same reason as the
    // history's old builds; find_failure ignores the latter.
    Result<void> remember_failure(std::string_view image_key, const Failure& failure,
                                  std::int64_t now, std::int64_t expires_at,
                                  std::int64_t not_after);
    Result<std::optional<Failure>> find_failure(std::string_view image_key, std::int64_t now,
                                                std::int64_t not_after);

private:
    Db m_db;
};

} // namespace nixery
