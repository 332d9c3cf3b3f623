#include "cache/build_cache.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nixery;
using testutil::k_sql;
using testutil::open_cache;
using testutil::TempDir;

TEST_SUITE_BEGIN("cache");

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

TEST_CASE("Db::open: a schema newer than this nixery's is refused, not used") {
    TempDir dir;
    {
        auto cache = open_cache(dir);
        const auto newest = cache.db().schema_version();
        REQUIRE(cache.db().exec("PRAGMA user_version = " + std::to_string(newest + 1)));
    }
    const auto db = Db::open(dir / "cache.sqlite", k_sql);
    REQUIRE_FALSE(db);
    CHECK(db.error().message.find("newer than this nixery's") != std::string::npos);
    const auto read = Db::open_read_only(dir / "cache.sqlite", k_sql);
    REQUIRE_FALSE(read);
    CHECK(read.error().message.find("newer than this nixery's") != std::string::npos);
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

TEST_CASE("Db::open: out of descriptors says so, not that the file is at fault") {
    TempDir dir;
    const auto file = dir.path() / "nixery.db";
    REQUIRE(Db::open(file, k_sql)); // exists, and is fine
    const pid_t child = fork();
    if (child == 0) {
        // No descriptor left above those open now.
        const int lowest_free = ::dup(0);
        ::close(lowest_free);
        const rlimit limit{static_cast<rlim_t>(lowest_free), static_cast<rlim_t>(lowest_free)};
        ::setrlimit(RLIMIT_NOFILE, &limit);
        const auto db = Db::open(file, k_sql);
        const bool said = !db &&
                          db.error().message.find("too many open files") != std::string::npos &&
                          db.error().message.find("backup") == std::string::npos;
        _exit(said ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
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

TEST_SUITE_END();
