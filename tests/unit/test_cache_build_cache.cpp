#include "cache/build_cache.hpp"
#include "testutil.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nixery;
using testutil::TempDir;

namespace {

const std::filesystem::path k_sql = "sql"; // tests run from the checkout root

BuildCache open_cache(const TempDir& dir) {
    auto db = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
    return BuildCache(std::move(*db));
}

std::string digest(char c) {
    return "sha256:" + std::string(64, c);
}

} // namespace

TEST_CASE("Db: schema from sql/, WAL mode") {
    TempDir dir;
    auto cache = open_cache(dir);
    CHECK(cache.db().schema_version() >= 1);
    auto mode = cache.db().prepare("PRAGMA journal_mode");
    REQUIRE(mode);
    REQUIRE(*mode->step());
    CHECK(mode->text(0) == "wal");
    // Opening again does not re-apply migrations.
    auto again = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE(again);
    CHECK(again->schema_version() == cache.db().schema_version());
}

TEST_CASE("Db::open: the database is its owner's only") {
    TempDir dir;
    const auto old = ::umask(0027);
    {
        auto cache = open_cache(dir);
        REQUIRE(cache.record_tag("hello", "latest", 1)); // -wal and -shm exist now
        for (const char* name : {"cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"}) {
            struct stat st {};
            REQUIRE(::stat((dir / name).c_str(), &st) == 0);
            CHECK_MESSAGE((st.st_mode & 0777) == 0600, name);
        }
    }
    ::umask(old);
    // One made by an older nixery is made private when opened.
    ::chmod((dir / "cache.sqlite").c_str(), 0640);
    open_cache(dir);
    struct stat st {};
    REQUIRE(::stat((dir / "cache.sqlite").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("Db::prepare: statements are reused, each use starting afresh") {
    TempDir dir;
    auto db = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE(db);
    REQUIRE(db->exec("CREATE TABLE t (n INTEGER)"));
    for (std::int64_t n : {1, 2, 3}) {
        auto insert = db->prepare("INSERT INTO t (n) VALUES (?1)");
        REQUIRE(insert);
        REQUIRE(insert->bind(1, n).run());
    }
    const auto count_at_least = [&](std::optional<std::int64_t> n) {
        auto s = db->prepare("SELECT count(*) FROM t WHERE n >= ?1");
        REQUIRE(s);
        if (n) {
            s->bind(1, *n);
        }
        REQUIRE(*s->step());
        return s->integer(0);
    };
    CHECK(count_at_least(2) == 2);
    CHECK(count_at_least(std::nullopt) == 0); // the last use's binding is gone: NULL
    // The same query inside the loop over its own rows, left mid-way.
    auto outer = db->prepare("SELECT n FROM t ORDER BY n");
    REQUIRE(outer);
    std::vector<std::int64_t> pairs;
    while (*outer->step()) {
        auto inner = db->prepare("SELECT n FROM t ORDER BY n");
        REQUIRE(inner);
        REQUIRE(*inner->step());
        pairs.push_back(outer->integer(0) * 10 + inner->integer(0));
    }
    CHECK(pairs == std::vector<std::int64_t>{11, 21, 31});
    // A statement left mid-way does not keep the connection in its read
    // transaction: a later query sees another connection's write.
    {
        auto partial = db->prepare("SELECT n FROM t ORDER BY n");
        REQUIRE(*partial->step());
    }
    auto other = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE(other);
    REQUIRE(other->exec("INSERT INTO t (n) VALUES (4)"));
    CHECK(count_at_least(4) == 1);
}

// Whether a process other than this one would find SQLite's lock bytes
// of `file` locked: asked from a child, since F_GETLK never reports the
// asking process's own locks.
bool locked_for_others(const std::filesystem::path& file) {
    const pid_t child = ::fork();
    if (child == 0) {
        const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        struct flock lock {};
        lock.l_type = F_WRLCK;
        lock.l_whence = SEEK_SET;
        lock.l_start = 0x40000000; // SQLite's PENDING byte, then RESERVED and SHARED
        lock.l_len = 512;
        const bool held = fd >= 0 && ::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
        ::_exit(held ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status) == 0;
}

TEST_CASE("Db::open keeps the locks of the process's other connections") {
    // A connection in WAL mode holds a shared lock on the database for its
    // lifetime, so that another process closing the last of its own
    // connections does not checkpoint and delete the WAL under it. POSIX
    // locks belong to the process: closing any descriptor of the file
    // drops them all. So opening a second connection (another worker
    // thread) must not open and close the file itself.
    TempDir dir;
    auto first = open_cache(dir);
    REQUIRE(first.record_tag("hello", "latest", 1));
    REQUIRE(locked_for_others(dir / "cache.sqlite"));
    auto second = open_cache(dir);
    CHECK(locked_for_others(dir / "cache.sqlite"));
}

TEST_CASE("Db::open_read_only") {
    TempDir dir;
    SUBCASE("an up-to-date database is read, not changed") {
        {
            auto cache = open_cache(dir);
            REQUIRE(cache.record_tag("hello", "latest", 1));
        }
        auto db = Db::open_read_only(dir / "cache.sqlite", k_sql);
        REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
        auto s = db->prepare("SELECT count(*) FROM tags");
        REQUIRE(s);
        REQUIRE(*s->step());
        CHECK(s->integer(0) == 1);
        CHECK_FALSE(db->exec("DELETE FROM tags"));
    }
    SUBCASE("an old schema is not migrated") {
        testutil::write_file(dir / "sql/001_a.sql", "CREATE TABLE a (x);");
        REQUIRE(Db::open(dir / "old.sqlite", dir / "sql"));
        testutil::write_file(dir / "sql/002_b.sql", "CREATE TABLE b (x);");
        auto db = Db::open_read_only(dir / "old.sqlite", dir / "sql");
        REQUIRE_FALSE(db);
        CHECK(db.error().message.find("has schema version 1, this nixery needs 2") !=
              std::string::npos);
        CHECK(Db::open(dir / "old.sqlite", dir / "sql")->schema_version() == 2);
    }
    SUBCASE("a missing database is not created") {
        CHECK_FALSE(Db::open_read_only(dir / "none.sqlite", k_sql));
        CHECK_FALSE(std::filesystem::exists(dir / "none.sqlite"));
    }
}

TEST_CASE("BuildCache records") {
    TempDir dir;
    auto cache = open_cache(dir);

    SUBCASE("blobs and layers") {
        CHECK_FALSE(*cache.find_blob(digest('a')));
        REQUIRE(cache.record_blob({digest('a'), 42, "application/octet-stream"}, 100));
        REQUIRE(
            cache.record_blob({digest('a'), 42, "application/octet-stream"}, 200)); // idempotent
        const auto blob = *cache.find_blob(digest('a'));
        REQUIRE(blob);
        CHECK(blob->size == 42);
        REQUIRE(cache.record_layer("key1", {digest('a'), digest('b'), 42}, 100));
        const auto layer = *cache.find_layer("key1");
        REQUIRE(layer);
        CHECK(layer->diff_id == digest('b'));
        CHECK_FALSE(*cache.find_layer("key2"));
    }
    SUBCASE("images, evaluations and tags") {
        ImageRecord image{digest('c'), "{docker}",  digest('d'),
                          "{oci}",     digest('e'), {digest('a'), digest('c')}};
        REQUIRE(cache.record_image("closure1", image, 100));
        const auto found = *cache.find_image("closure1");
        REQUIRE(found);
        CHECK(found->docker_manifest == "{docker}");
        CHECK(found->oci_digest == digest('e'));
        REQUIRE(cache.record_evaluation("image1", "closure1", 100));
        REQUIRE(cache.record_evaluation("image1", "closure1", 150));
        CHECK((*cache.find_evaluation("image1"))->evaluated_at == 150);
        REQUIRE(cache.record_tag("hello", "v2", 1));
        REQUIRE(cache.record_tag("hello", "v1", 1));
        REQUIRE(cache.record_tag("other", "x", 1));
        CHECK(*cache.tags("hello") == std::vector<std::string>{"v1", "v2"});
    }
    SUBCASE("a name keeps its most recently pulled tags, the oldest go") {
        const int n = BuildCache::k_max_tags_per_name;
        for (int i = 0; i < n + 5; ++i) {
            REQUIRE(cache.record_tag("flood", "t" + std::to_string(i), 1000 + i * 100));
        }
        REQUIRE(cache.record_tag("other", "x", 1));
        const auto kept = *cache.tags("flood");
        CHECK(kept.size() == static_cast<std::size_t>(n));
        CHECK(std::find(kept.begin(), kept.end(), "t4") == kept.end());
        CHECK(std::find(kept.begin(), kept.end(), "t5") != kept.end());
        CHECK(std::find(kept.begin(), kept.end(), "t" + std::to_string(n + 4)) != kept.end());
        CHECK(*cache.tags("other") == std::vector<std::string>{"x"});
    }
    SUBCASE("uses are recorded to within a minute, without a write per pull") {
        REQUIRE(cache.record_tag("hello", "latest", 1000));
        REQUIRE(cache.record_tag("hello", "latest", 1030));
        auto s = cache.db().prepare("SELECT last_pulled_at FROM tags WHERE name = 'hello'");
        REQUIRE(*s->step());
        CHECK(s->integer(0) == 1000);
        REQUIRE(cache.record_tag("hello", "latest", 1100));
        auto t = cache.db().prepare("SELECT last_pulled_at FROM tags WHERE name = 'hello'");
        REQUIRE(*t->step());
        CHECK(t->integer(0) == 1100);
        REQUIRE(cache.record_image(
            "c", ImageRecord{digest('c'), "{}", digest('d'), "{}", digest('e'), {}}, 1000));
        const auto last_used = [&] {
            auto u = cache.db().prepare("SELECT last_used_at FROM images WHERE closure_key = 'c'");
            REQUIRE(*u->step());
            return u->integer(0);
        };
        REQUIRE(cache.touch_image("c", 1059));
        CHECK(last_used() == 1000); // within a minute: no write
        REQUIRE(cache.touch_image("c", 1061));
        CHECK(last_used() == 1061);
    }
    SUBCASE("images by their manifests' digests, and forgetting them") {
        REQUIRE(cache.record_image(
            "c", ImageRecord{digest('c'), "{}", digest('d'), "{}", digest('e'), {digest('a')}},
            1000));
        REQUIRE(cache.record_evaluation("image-c", "c", 1000));
        CHECK(*cache.image_with_manifest(digest('d')) == "c");
        CHECK(*cache.image_with_manifest(digest('e')) == "c");
        CHECK_FALSE(*cache.image_with_manifest(digest('c'))); // the config
        REQUIRE(cache.forget_image("c"));
        CHECK_FALSE(*cache.find_image("c"));
        CHECK_FALSE(*cache.find_evaluation("image-c"));
        CHECK_FALSE(*cache.image_with_manifest(digest('d')));
    }
    SUBCASE("when shared use markers were written") {
        CHECK_FALSE(*cache.shared_use_written(digest('d')));
        REQUIRE(cache.record_shared_use_written(digest('d'), 100));
        REQUIRE(cache.record_shared_use_written(digest('d'), 200));
        CHECK(*cache.shared_use_written(digest('d')) == 200);
    }
    SUBCASE("builds") {
        const auto id = *cache.start_build("hello", "latest", "k", 10.0);
        REQUIRE(cache.finish_build(id, 1.5, 3, 4, 200, ""));
        const auto failed = *cache.start_build("broken", "latest", "k2", 20.0);
        REQUIRE(cache.finish_build(failed, 0.5, 0, 0, 404, "it broke"));
        const auto recent = *cache.recent_builds(10);
        REQUIRE(recent.size() == 2);
        CHECK(recent[0].image == "broken"); // newest first
        CHECK(recent[1].layers_built == 3);
        CHECK(recent[1].layers_reused == 4);
        CHECK(*recent[1].duration == doctest::Approx(1.5));
        const auto failures = *cache.recent_builds(10, true);
        REQUIRE(failures.size() == 1);
        CHECK(failures[0].error == "it broke");
        CHECK(cache.builds_of("hello", "latest")->size() == 1);
    }
    SUBCASE("failures are remembered until they expire") {
        const auto err = manifest_unknown("nope", R"({"missing":["x"]})");
        REQUIRE(cache.remember_failure("img", err, 130));
        const auto hit = *cache.find_failure("img", 100);
        REQUIRE(hit);
        CHECK(hit->status == 404);
        CHECK(hit->detail == err.detail);
        CHECK_FALSE(*cache.find_failure("img", 130));
    }
    SUBCASE("request data is bound, never spliced into SQL") {
        const std::string evil = "x'); DROP TABLE tags; --";
        REQUIRE(cache.record_tag(evil, evil, 1));
        CHECK(*cache.tags(evil) == std::vector<std::string>{evil});
    }
}

TEST_CASE("BuildCache: several processes write at once") {
    TempDir dir;
    { open_cache(dir); } // create the schema first, as the master does
    constexpr int k_procs = 4;
    constexpr int k_rows = 100;
    std::vector<pid_t> children;
    for (int p = 0; p < k_procs; ++p) {
        const pid_t pid = fork();
        if (pid == 0) {
            auto db = Db::open(dir / "cache.sqlite", k_sql);
            if (!db) {
                _exit(1);
            }
            BuildCache cache(std::move(*db));
            for (int i = 0; i < k_rows; ++i) {
                const auto tag = "p" + std::to_string(p) + "-" + std::to_string(i);
                // One image per process and row: a name keeps only its
                // newest tags (k_max_tags_per_name).
                const auto image = "img" + std::to_string(p) + "-" + std::to_string(i);
                if (!cache.record_tag(image, tag, i) || !cache.start_build("img", tag, "k", i)) {
                    _exit(2);
                }
            }
            _exit(0);
        }
        children.push_back(pid);
    }
    for (auto pid : children) {
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    auto cache = open_cache(dir);
    auto rows = cache.db().prepare("SELECT count(*) FROM tags");
    REQUIRE(*rows->step());
    CHECK(rows->integer(0) == k_procs * k_rows);
    CHECK(cache.recent_builds(1000)->size() == k_procs * k_rows);
}

TEST_CASE("Db::open: an unusable database stops start-up, naming the file") {
    TempDir dir;
    SUBCASE("not SQLite") {
        testutil::write_file(dir / "cache.sqlite", std::string(8192, 'x'));
    }
    SUBCASE("a directory in its place") {
        std::filesystem::create_directory(dir / "cache.sqlite");
    }
    auto db = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE_FALSE(db);
    const auto& message = db.error().message;
    CHECK(message.find((dir / "cache.sqlite").string()) != std::string::npos);
    CHECK(message.find("restore the file from a backup") != std::string::npos);
    CHECK(message.find("blobs in storage are safe") != std::string::npos);
}
