#include "cache/build_cache.hpp"

#include <unistd.h>

namespace nixery {

namespace {

BuildRecord read_build(const Statement& s) {
    BuildRecord b;
    b.id = s.integer(0);
    b.image = s.text(1);
    b.tag = s.text(2);
    b.started_at = s.real(3);
    if (!s.is_null(4)) {
        b.duration = s.real(4);
    }
    b.layers_built = static_cast<int>(s.integer(5));
    b.layers_reused = static_cast<int>(s.integer(6));
    if (!s.is_null(7)) {
        b.status = static_cast<int>(s.integer(7));
    }
    b.error = s.text(8);
    return b;
}

Result<std::vector<BuildRecord>> collect_builds(Statement& s) {
    std::vector<BuildRecord> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out.push_back(read_build(s));
    }
}

// A pull of a cached image would otherwise write on every request; the times
// of last use only need to be right to within this many seconds.
constexpr std::int64_t k_touch_granularity = 60;

constexpr std::string_view k_build_columns =
    "id, image, tag, started_at, duration, layers_built, layers_reused, status, error";

} // namespace

Result<std::optional<BlobRecord>> BuildCache::find_blob(std::string_view digest) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT size, media_type FROM blobs WHERE digest = ?1"));
    s.bind(1, digest);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<BlobRecord>();
    }
    return std::optional<BlobRecord>(
        BlobRecord{std::string(digest), static_cast<std::uint64_t>(s.integer(0)), s.text(1)});
}

Result<void> BuildCache::record_blob(const BlobRecord& blob, std::int64_t now) {
    TRY_ASSIGN(auto s, m_db.prepare("INSERT INTO blobs (digest, size, media_type, created_at) "
                                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (digest) DO NOTHING"));
    s.bind(1, blob.digest)
        .bind(2, static_cast<std::int64_t>(blob.size))
        .bind(3, blob.media_type)
        .bind(4, now);
    return s.run();
}

Result<std::optional<LayerRecord>> BuildCache::find_layer(std::string_view layer_key) {
    TRY_ASSIGN(auto s,
               m_db.prepare("SELECT digest, diff_id, size FROM layers WHERE layer_key = ?1"));
    s.bind(1, layer_key);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<LayerRecord>();
    }
    return std::optional<LayerRecord>(
        LayerRecord{s.text(0), s.text(1), static_cast<std::uint64_t>(s.integer(2))});
}

Result<void> BuildCache::record_layer(std::string_view layer_key, const LayerRecord& layer,
                                      std::int64_t now) {
    TRY_ASSIGN(
        auto s,
        m_db.prepare("INSERT INTO layers (layer_key, digest, diff_id, size, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (layer_key) DO UPDATE SET "
                     "digest = excluded.digest, diff_id = excluded.diff_id, size = excluded.size"));
    s.bind(1, layer_key).bind(2, layer.digest).bind(3, layer.diff_id);
    s.bind(4, static_cast<std::int64_t>(layer.size)).bind(5, now);
    return s.run();
}

Result<std::optional<ImageRecord>> BuildCache::find_image(std::string_view closure_key) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT config_digest, docker_manifest, docker_digest, "
                                    "oci_manifest, oci_digest FROM images WHERE closure_key = ?1"));
    s.bind(1, closure_key);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<ImageRecord>();
    }
    ImageRecord image{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), {}};
    return std::optional<ImageRecord>(std::move(image));
}

Result<std::vector<std::string>> BuildCache::image_blobs(std::string_view closure_key) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT digest FROM image_blobs WHERE closure_key = ?1 "
                                    "ORDER BY digest"));
    s.bind(1, closure_key);
    return s.texts(0);
}

Result<void> BuildCache::record_image(std::string_view closure_key, const ImageRecord& image,
                                      std::int64_t now,
                                      const std::vector<std::string>& store_paths) {
    TRY_ASSIGN(auto tx, Transaction::begin(m_db));
    TRY_ASSIGN(
        auto s,
        m_db.prepare(
            "INSERT INTO images (closure_key, config_digest, docker_manifest, "
            "docker_digest, oci_manifest, oci_digest, created_at, last_used_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (closure_key) DO UPDATE SET "
            "config_digest = excluded.config_digest, docker_manifest = excluded.docker_manifest, "
            "docker_digest = excluded.docker_digest, oci_manifest = excluded.oci_manifest, "
            "oci_digest = excluded.oci_digest, last_used_at = excluded.last_used_at"));
    s.bind(1, closure_key).bind(2, image.config_digest).bind(3, image.docker_manifest);
    s.bind(4, image.docker_digest)
        .bind(5, image.oci_manifest)
        .bind(6, image.oci_digest)
        .bind(7, now);
    TRY(s.run());
    TRY_ASSIGN(auto clear, m_db.prepare("DELETE FROM image_blobs WHERE closure_key = ?1"));
    clear.bind(1, closure_key);
    TRY(clear.run());
    for (const auto& digest : image.blobs) {
        TRY_ASSIGN(auto b, m_db.prepare("INSERT OR IGNORE INTO image_blobs (closure_key, digest) "
                                        "VALUES (?1, ?2)"));
        b.bind(1, closure_key).bind(2, digest);
        TRY(b.run());
    }
    if (!store_paths.empty()) {
        TRY_ASSIGN(auto forget,
                   m_db.prepare("DELETE FROM image_store_paths WHERE closure_key = ?1"));
        forget.bind(1, closure_key);
        TRY(forget.run());
        for (const auto& path : store_paths) {
            TRY_ASSIGN(auto p, m_db.prepare("INSERT OR IGNORE INTO image_store_paths "
                                            "(closure_key, store_path) VALUES (?1, ?2)"));
            p.bind(1, closure_key).bind(2, path);
            TRY(p.run());
        }
        // Needed again: no longer a candidate for deletion.
        TRY_ASSIGN(auto keep, m_db.prepare("DELETE FROM nix_gc_candidates WHERE store_path IN "
                                           "(SELECT store_path FROM image_store_paths WHERE "
                                           "closure_key = ?1)"));
        keep.bind(1, closure_key);
        TRY(keep.run());
    }
    return tx.commit();
}

Result<void> BuildCache::touch_image(std::string_view closure_key, std::int64_t now) {
    TRY_ASSIGN(auto current,
               m_db.prepare("SELECT last_used_at FROM images WHERE closure_key = ?1"));
    current.bind(1, closure_key);
    TRY_ASSIGN(const bool row, current.step());
    if (!row || current.integer(0) > now - k_touch_granularity) {
        return {};
    }
    TRY_ASSIGN(auto s, m_db.prepare("UPDATE images SET last_used_at = ?2 WHERE closure_key = ?1"));
    s.bind(1, closure_key).bind(2, now);
    return s.run();
}

Result<std::optional<std::string>> BuildCache::image_with_manifest(std::string_view digest) {
    TRY_ASSIGN(auto s,
               m_db.prepare("SELECT closure_key FROM images WHERE docker_digest = ?1 "
                            "UNION ALL SELECT closure_key FROM images WHERE oci_digest = ?1 "
                            "LIMIT 1"));
    s.bind(1, digest);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<std::string>();
    }
    return std::optional<std::string>(s.text(0));
}

Result<void> BuildCache::record_index(std::string_view index_digest,
                                      const std::vector<std::string>& manifests) {
    TRY_ASSIGN(auto tx, Transaction::begin(m_db));
    for (const auto& manifest : manifests) {
        TRY_ASSIGN(auto s, m_db.prepare("INSERT OR IGNORE INTO image_children (index_digest, "
                                        "manifest_digest) VALUES (?1, ?2)"));
        s.bind(1, index_digest).bind(2, manifest);
        TRY(s.run());
    }
    return tx.commit();
}

Result<std::vector<std::string>> BuildCache::index_children(std::string_view digest) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT manifest_digest FROM image_children WHERE "
                                    "index_digest = ?1 ORDER BY manifest_digest"));
    s.bind(1, digest);
    return s.texts(0);
}

Result<void> forget_images(Db& db, const std::vector<std::string>& closure_keys) {
    TRY_ASSIGN(auto tx, Transaction::begin(db));
    for (const auto& key : closure_keys) {
        for (const char* sql : {"DELETE FROM evaluations WHERE closure_key = ?1",
                                "DELETE FROM images WHERE closure_key = ?1"}) {
            TRY_ASSIGN(auto s, db.prepare(sql));
            s.bind(1, key);
            TRY(s.run());
        }
    }
    return tx.commit();
}

Result<void> BuildCache::forget_image(std::string_view closure_key) {
    return forget_images(m_db, {std::string(closure_key)});
}

Result<std::optional<std::int64_t>> BuildCache::shared_use_written(std::string_view digest) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT written_at FROM shared_uses WHERE digest = ?1"));
    s.bind(1, digest);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<std::int64_t>();
    }
    return std::optional<std::int64_t>(s.integer(0));
}

Result<void> BuildCache::record_shared_use_written(std::string_view digest, std::int64_t now) {
    TRY_ASSIGN(auto s, m_db.prepare("INSERT INTO shared_uses (digest, written_at) VALUES (?1, ?2) "
                                    "ON CONFLICT (digest) DO UPDATE SET written_at = ?2"));
    s.bind(1, digest).bind(2, now);
    return s.run();
}

Result<std::optional<EvaluationRecord>> BuildCache::find_evaluation(std::string_view image_key) {
    TRY_ASSIGN(
        auto s,
        m_db.prepare("SELECT closure_key, evaluated_at FROM evaluations WHERE image_key = ?1"));
    s.bind(1, image_key);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<EvaluationRecord>();
    }
    return std::optional<EvaluationRecord>(EvaluationRecord{s.text(0), s.integer(1)});
}

Result<void> BuildCache::record_evaluation(std::string_view image_key, std::string_view closure_key,
                                           std::int64_t now) {
    TRY_ASSIGN(
        auto s,
        m_db.prepare("INSERT INTO evaluations (image_key, closure_key, evaluated_at) "
                     "VALUES (?1, ?2, ?3) ON CONFLICT (image_key) DO UPDATE SET "
                     "closure_key = excluded.closure_key, evaluated_at = excluded.evaluated_at"));
    s.bind(1, image_key).bind(2, closure_key).bind(3, now);
    return s.run();
}

Result<void> BuildCache::record_tag(std::string_view name, std::string_view tag, std::int64_t now) {
    TRY_ASSIGN(auto current,
               m_db.prepare("SELECT last_pulled_at FROM tags WHERE name = ?1 AND tag = ?2"));
    current.bind(1, name).bind(2, tag);
    TRY_ASSIGN(const bool row, current.step());
    if (row && current.integer(0) > now - k_touch_granularity) {
        return {};
    }
    TRY_ASSIGN(
        auto s,
        m_db.prepare(
            "INSERT INTO tags (name, tag, last_pulled_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (name, tag) DO UPDATE SET last_pulled_at = excluded.last_pulled_at"));
    s.bind(1, name).bind(2, tag).bind(3, now);
    TRY(s.run());
    if (row) {
        return {};
    }
    // A new tag: the oldest beyond k_max_tags_per_name go.
    TRY_ASSIGN(auto trim, m_db.prepare("DELETE FROM tags WHERE name = ?1 AND tag NOT IN "
                                       "(SELECT tag FROM tags WHERE name = ?1 "
                                       "ORDER BY last_pulled_at DESC, tag LIMIT ?2)"));
    trim.bind(1, name).bind(2, std::int64_t{k_max_tags_per_name});
    return trim.run();
}

Result<std::vector<std::string>> BuildCache::tags(std::string_view name) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT tag FROM tags WHERE name = ?1 ORDER BY tag"));
    s.bind(1, name);
    return s.texts(0);
}

Result<std::int64_t> BuildCache::start_build(std::string_view image, std::string_view tag,
                                             std::string_view image_key, double now) {
    TRY_ASSIGN(auto s, m_db.prepare("INSERT INTO builds (image, tag, image_key, started_at, pid) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id"));
    s.bind(1, image)
        .bind(2, tag)
        .bind(3, image_key)
        .bind(4, now)
        .bind(5, static_cast<std::int64_t>(getpid()));
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return fail("record build of \"" + std::string(image) + "\" failed: no id returned");
    }
    const auto id = s.integer(0);
    TRY(s.run());
    TRY_ASSIGN(auto prune,
               m_db.prepare("DELETE FROM builds WHERE id <= ?1 AND duration IS NOT NULL"));
    prune.bind(1, id - k_build_history);
    TRY(prune.run());
    return id;
}

Result<void> BuildCache::finish_build(std::int64_t id, double duration, int layers_built,
                                      int layers_reused, int status, std::string_view error) {
    TRY_ASSIGN(auto s, m_db.prepare("UPDATE builds SET duration = ?2, layers_built = ?3, "
                                    "layers_reused = ?4, status = ?5, error = ?6 WHERE id = ?1"));
    s.bind(1, id)
        .bind(2, duration)
        .bind(3, std::int64_t{layers_built})
        .bind(4, std::int64_t{layers_reused});
    s.bind(5, std::int64_t{status});
    if (error.empty()) {
        s.bind_null(6);
    } else {
        s.bind(6, error);
    }
    return s.run();
}

Result<std::vector<BuildRecord>> BuildCache::recent_builds(int limit, Builds which) {
    const std::string sql = "SELECT " + std::string(k_build_columns) + " FROM builds" +
                            (which == Builds::failed ? " WHERE error IS NOT NULL" : "") +
                            // By id, the order they started in even when the
                            // wall clock stepped back meanwhile.
                            " ORDER BY id DESC LIMIT ?1";
    TRY_ASSIGN(auto s, m_db.prepare(sql));
    s.bind(1, std::int64_t{limit});
    return collect_builds(s);
}

Result<std::vector<BuildRecord>> BuildCache::builds_of(std::string_view image,
                                                       std::string_view tag) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT " + std::string(k_build_columns) +
                                    " FROM builds WHERE image = ?1 AND tag = ?2 ORDER BY id"));
    s.bind(1, image).bind(2, tag);
    return collect_builds(s);
}

Result<void> BuildCache::remember_failure(std::string_view image_key, const Failure& failure,
                                          std::int64_t now, std::int64_t expires_at,
                                          std::int64_t not_after) {
    TRY_ASSIGN(auto expired,
               m_db.prepare("DELETE FROM failures WHERE expires_at <= ?1 OR expires_at > ?2"));
    expired.bind(1, now).bind(2, not_after);
    TRY(expired.run());
    TRY_ASSIGN(auto s, m_db.prepare("INSERT INTO failures (image_key, kind, what, message, detail, "
                                    "retry_after, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                    "ON CONFLICT (image_key) DO UPDATE SET kind = excluded.kind, "
                                    "what = excluded.what, message = excluded.message, detail = "
                                    "excluded.detail, retry_after = excluded.retry_after, "
                                    "expires_at = excluded.expires_at"));
    s.bind(1, image_key).bind(2, failure_kind_name(failure.kind)).bind(3, failure.what);
    s.bind(4, failure.message).bind(5, failure.detail);
    s.bind(6, std::int64_t{failure.retry_after}).bind(7, expires_at);
    return s.run();
}

Result<std::optional<Failure>> BuildCache::find_failure(std::string_view image_key,
                                                        std::int64_t now, std::int64_t not_after) {
    TRY_ASSIGN(auto s,
               m_db.prepare("SELECT kind, what, message, detail, retry_after FROM failures "
                            "WHERE image_key = ?1 AND expires_at > ?2 AND expires_at <= ?3"));
    s.bind(1, image_key).bind(2, now).bind(3, not_after);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<Failure>();
    }
    Failure failure;
    if (!parse_failure_kind(s.text(0), failure.kind)) {
        failure.kind = FailureKind::fault; // written by a newer version: retried soon
    }
    failure.what = s.text(1);
    failure.message = s.text(2);
    failure.detail = s.text(3);
    failure.retry_after = static_cast<int>(s.integer(4));
    failure.remembered = true;
    return std::optional<Failure>(std::move(failure));
}

} // namespace nixery
