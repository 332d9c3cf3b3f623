#include "cache/gc_queries.hpp"

namespace nixery {

namespace {

Result<std::set<std::string>> first_column(Statement& s) {
    std::set<std::string> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out.insert(s.text(0));
    }
}

// The second column of `sql`'s rows, grouped by the first.
Result<std::map<std::string, std::vector<std::string>>> grouped(Db& db, std::string_view sql) {
    TRY_ASSIGN(auto s, db.prepare(sql));
    std::map<std::string, std::vector<std::string>> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out[s.text(0)].push_back(s.text(1));
    }
}

// Steps a statement that returns one row per deleted row.
Result<int> count_rows(Statement& s) {
    int n = 0;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return n;
        }
        ++n;
    }
}

} // namespace

Result<std::set<std::string>> GcQueries::images_unused_since(std::int64_t cutoff) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT closure_key FROM images WHERE last_used_at < ?1"));
    s.bind(1, cutoff);
    return first_column(s);
}

Result<std::vector<LocalImage>> GcQueries::images() {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT closure_key, last_used_at, docker_digest, oci_digest "
                                    "FROM images"));
    std::vector<LocalImage> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out.push_back({s.text(0), s.integer(1), s.text(2), s.text(3)});
    }
}

Result<std::map<std::string, std::vector<std::string>>> GcQueries::image_blobs() {
    return grouped(m_db, "SELECT closure_key, digest FROM image_blobs");
}

Result<std::map<std::string, std::vector<std::string>>> GcQueries::indexes_by_manifest() {
    return grouped(m_db, "SELECT manifest_digest, index_digest FROM image_children");
}

Result<std::set<std::string>> GcQueries::image_names(std::string_view closure_key) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT DISTINCT b.image FROM evaluations e JOIN builds b "
                                    "ON b.image_key = e.image_key WHERE e.closure_key = ?1"));
    s.bind(1, closure_key);
    return first_column(s);
}

Result<bool> GcQueries::is_referenced(std::string_view digest) {
    TRY_ASSIGN(auto s, m_db.prepare(
                           "SELECT 1 FROM image_blobs WHERE digest = ?1 UNION ALL "
                           "SELECT 1 FROM image_children c JOIN images i ON c.manifest_digest "
                           "IN (i.docker_digest, i.oci_digest) WHERE c.index_digest = ?1 LIMIT 1"));
    s.bind(1, digest);
    return s.step();
}

Result<std::map<std::string, std::uint64_t>> GcQueries::recorded_blobs() {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT digest, size FROM blobs UNION "
                                    "SELECT digest, size FROM layers"));
    std::map<std::string, std::uint64_t> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out.emplace(s.text(0), static_cast<std::uint64_t>(s.integer(1)));
    }
}

Result<void> GcQueries::forget_blob(std::string_view digest) {
    TRY_ASSIGN(auto tx, Transaction::begin(m_db));
    for (const char* sql :
         {"DELETE FROM layers WHERE digest = ?1", "DELETE FROM blobs WHERE digest = ?1",
          "DELETE FROM image_children WHERE index_digest = ?1"}) {
        TRY_ASSIGN(auto s, m_db.prepare(sql));
        s.bind(1, digest);
        TRY(s.run());
    }
    return tx.commit();
}

Result<int> GcQueries::forget_dangling_evaluations() {
    TRY_ASSIGN(auto s, m_db.prepare("DELETE FROM evaluations WHERE closure_key NOT IN "
                                    "(SELECT closure_key FROM images) RETURNING 1"));
    return count_rows(s);
}

Result<int> GcQueries::forget_expired_failures(std::int64_t now) {
    TRY_ASSIGN(auto s, m_db.prepare("DELETE FROM failures WHERE expires_at <= ?1 RETURNING 1"));
    s.bind(1, now);
    return count_rows(s);
}

Result<int> GcQueries::forget_builds(std::int64_t before, int keep_last) {
    TRY_ASSIGN(auto s, m_db.prepare("DELETE FROM builds WHERE started_at < ?1 AND duration IS NOT "
                                    "NULL AND id NOT IN (SELECT id FROM builds ORDER BY id DESC "
                                    "LIMIT ?2) RETURNING 1"));
    s.bind(1, before).bind(2, std::int64_t{keep_last});
    return count_rows(s);
}

Result<int> GcQueries::forget_tags(std::int64_t before) {
    TRY_ASSIGN(auto s, m_db.prepare("DELETE FROM tags WHERE last_pulled_at < ?1 RETURNING 1"));
    s.bind(1, before);
    return count_rows(s);
}

Result<int> GcQueries::forget_shared_uses(std::int64_t before) {
    TRY_ASSIGN(auto s, m_db.prepare("DELETE FROM shared_uses WHERE written_at < ?1 RETURNING 1"));
    s.bind(1, before);
    return count_rows(s);
}

Result<std::optional<std::int64_t>> GcQueries::running_build_pid(std::int64_t id) {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT pid FROM builds WHERE id = ?1 AND duration IS NULL"));
    s.bind(1, id);
    TRY_ASSIGN(const bool row, s.step());
    if (!row) {
        return std::optional<std::int64_t>();
    }
    return std::optional<std::int64_t>(s.integer(0));
}

Result<std::vector<OpenBuild>> GcQueries::open_builds() {
    TRY_ASSIGN(auto s, m_db.prepare("SELECT id, image, image_key, started_at FROM builds "
                                    "WHERE duration IS NULL ORDER BY id"));
    std::vector<OpenBuild> out;
    for (;;) {
        TRY_ASSIGN(const bool row, s.step());
        if (!row) {
            return out;
        }
        out.push_back({s.integer(0), s.text(1), s.text(2), s.real(3)});
    }
}

Result<bool> GcQueries::end_interrupted_build(std::int64_t id, double now, std::string_view error) {
    TRY_ASSIGN(auto s, m_db.prepare("UPDATE builds SET duration = max(0, ?2 - started_at), "
                                    "status = 503, error = ?3 WHERE id = ?1 AND duration IS NULL "
                                    "RETURNING 1"));
    s.bind(1, id).bind(2, now).bind(3, error);
    TRY_ASSIGN(const int n, count_rows(s));
    return n > 0;
}

} // namespace nixery
