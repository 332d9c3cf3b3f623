#include "builder/gc_lock.hpp"
#include "builder/records.hpp"
#include "builder/usage.hpp"
#include "cache/build_cache.hpp"
#include "gc/collector.hpp"
#include "storage/filesystem.hpp"
#include "testutil.hpp"

#include <algorithm>
#include <chrono>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <future>
#include <limits>
#include <sys/stat.h>
#include <thread>

using namespace nixery;
using namespace std::chrono_literals;
using testutil::TempDir;

namespace {

constexpr std::int64_t k_now = 1800000000;
constexpr std::int64_t k_day = 86400;

std::string hex(char c) {
    return std::string(64, c);
}
std::string digest(char c) {
    return "sha256:" + hex(c);
}

struct Fixture {
    TempDir dir;
    Config config;
    std::unique_ptr<StorageBackend> storage;
    std::optional<BuildCache> cache;
    std::optional<LockTable> locks;
    std::vector<std::string> lines;

    Fixture() {
        config.state_dir = dir / "state";
        config.storage_path = dir / "storage";
        std::filesystem::create_directories(config.locks());
        storage = make_filesystem_storage(config.storage_path);
        REQUIRE(storage->check());
        auto db = Db::open(config.database(), "sql");
        REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
        cache.emplace(std::move(*db));
        auto table = LockTable::open(config.lock_file());
        REQUIRE(table);
        locks.emplace(std::move(*table));
    }

    void store_blob(char c, bool row = true) {
        REQUIRE(storage->put(blob_key(hex(c)), std::string(100, c), "application/octet-stream"));
        if (row) {
            REQUIRE(cache->record_blob({digest(c), 100, "application/octet-stream"}, k_now));
        }
    }
    void image(const std::string& key, std::vector<std::string> blobs, std::int64_t used) {
        ImageRecord r{digest('f'), "{}", digest('f'), "{}", digest('f'), std::move(blobs)};
        REQUIRE(cache->record_image(key, r, used));
        REQUIRE(storage->put(image_record_key(key), encode_image_record(r), "application/json"));
    }
    bool stored(char c) { return *storage->exists(blob_key(hex(c))); }
    bool stored(const std::string& key) { return *storage->exists(key); }
    // Sets the modification time storage lists for `key`.
    void modified(const std::string& key, std::int64_t unix_seconds) {
        const timespec times[2] = {{unix_seconds, 0}, {unix_seconds, 0}};
        REQUIRE(::utimensat(AT_FDCWD, (config.storage_path / key).c_str(), times, 0) == 0);
    }
    // Another instance sharing the storage: its image record only.
    void foreign_image(const std::string& key, std::vector<std::string> blobs,
                       std::int64_t recorded) {
        ImageRecord r{digest('f'), "{}", digest('7'), "{}", digest('8'), std::move(blobs)};
        REQUIRE(storage->put(image_record_key(key), encode_image_record(r), "application/json"));
        modified(image_record_key(key), recorded);
    }
    // A use marker, as builder/usage.hpp writes them.
    void marker(const std::string& manifest, std::int64_t written) {
        REQUIRE(storage->put(use_marker_key(manifest), "1\n", "text/plain"));
        modified(use_marker_key(manifest), written);
    }

    Result<GcReport> collect(int keep_days, bool dry_run) {
        lines.clear();
        return collect_garbage({config, *storage, cache->db(), dry_run ? nullptr : &*locks},
                               {keep_days, dry_run}, k_now,
                               [this](std::string_view l) { lines.emplace_back(l); });
    }
    bool said(const std::string& text) const {
        for (const auto& l : lines) {
            if (l.find(text) != std::string::npos) {
                return true;
            }
        }
        return false;
    }
};

} // namespace

TEST_SUITE_BEGIN("gc");

TEST_CASE("collect_garbage") {
    Fixture f;
    f.store_blob('a');        // referenced by a recent image
    f.store_blob('b');        // referenced by an image unused for 40 days only
    f.store_blob('c', false); // left by a build that died before recording anything
    REQUIRE(f.cache->record_blob({digest('d'), 5, "x"}, k_now)); // a row, no object
    f.image("recent", {digest('a')}, k_now - 2 * k_day);
    f.image("old", {digest('b')}, k_now - 40 * k_day);
    REQUIRE(f.cache->record_evaluation("image-key-old", "old", k_now - 40 * k_day));
    REQUIRE(f.cache->record_layer("layer-b", {digest('b'), digest('e'), 100}, k_now));
    REQUIRE(f.storage->put(layer_record_key("layer-b"),
                           encode_layer_record({digest('b'), digest('e'), 100}), "x"));

    SUBCASE("a dry run says what would go and deletes nothing") {
        auto report = f.collect(30, true);
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(report->images == 1);
        CHECK(report->blobs == 2);
        CHECK(report->blob_bytes == 200);
        CHECK(f.said("would delete blob " + digest('b') + " (100 bytes)"));
        CHECK(f.said("would delete blob " + digest('c')));
        CHECK_FALSE(f.said(digest('a')));
        CHECK(f.said("would delete image old"));
        CHECK(f.stored('b'));
        CHECK(f.stored('c'));
        CHECK(f.cache->find_layer("layer-b")->has_value());
    }
    SUBCASE("what no image used within the window references goes, with its rows") {
        auto report = f.collect(30, false);
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(report->images == 1);
        CHECK(report->images_kept == 1);
        CHECK(report->blobs == 2);
        CHECK(report->stale_rows == 1);
        CHECK(report->records == 2); // the image record and the layer record
        CHECK(f.stored('a'));
        CHECK_FALSE(f.stored('b'));
        CHECK_FALSE(f.stored('c'));
        CHECK_FALSE(f.cache->find_blob(digest('b'))->has_value());
        CHECK_FALSE(f.cache->find_blob(digest('d'))->has_value());
        CHECK(f.cache->find_blob(digest('a'))->has_value());
        CHECK_FALSE(f.cache->find_layer("layer-b")->has_value());
        CHECK_FALSE(f.cache->find_image("old")->has_value());
        CHECK_FALSE(f.cache->find_evaluation("image-key-old")->has_value());
        CHECK_FALSE(*f.storage->exists(image_record_key("old")));
        CHECK_FALSE(*f.storage->exists(layer_record_key("layer-b")));
        CHECK(*f.storage->exists(image_record_key("recent")));
        // Nothing left to do.
        report = f.collect(30, false);
        REQUIRE(report);
        CHECK(report->blobs == 0);
        CHECK(report->images == 0);
    }
    SUBCASE("--keep-days 0 still keeps what was served within the last hour") {
        f.image("just-pulled", {digest('b')}, k_now - 60);
        auto report = f.collect(0, false);
        REQUIRE(report);
        CHECK(f.stored('b'));
        CHECK_FALSE(f.stored('a')); // "recent" was two days ago
        CHECK(f.cache->find_image("just-pulled")->has_value());
    }
    SUBCASE("another instance's image recorded within the window keeps its blobs") {
        f.foreign_image("foreign", {digest('c')}, k_now - 3 * k_day);
        REQUIRE(f.collect(30, false));
        CHECK(f.stored('c'));
        CHECK_FALSE(f.stored('b'));
        CHECK(f.stored(image_record_key("foreign")));
    }
    SUBCASE("another instance's use marker keeps an image this one no longer uses") {
        // "old" is unused here, but another instance pulled it by digest
        // (its manifest is digest('f')) 29 days ago, and "foreign" 20 days
        // ago; the marker of a use may be up to a day older than the use.
        f.marker(digest('f'), k_now - 29 * k_day);
        f.foreign_image("foreign", {digest('c')}, k_now - 90 * k_day);
        f.marker(digest('7'), k_now - 31 * k_day + 3600);
        auto report = f.collect(30, false);
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(f.stored('b'));
        CHECK(f.stored('c'));
        CHECK(f.cache->find_image("old")->has_value());
        CHECK(report->images == 0);
        CHECK(report->images_kept == 3);
        // A day later, nobody having used them since, both go, with their
        // records and markers.
        f.marker(digest('f'), k_now - 31 * k_day - 3600);
        f.marker(digest('7'), k_now - 31 * k_day - 3600);
        report = f.collect(30, false);
        REQUIRE(report);
        CHECK(report->images == 2);
        CHECK_FALSE(f.stored('b'));
        CHECK_FALSE(f.stored('c'));
        CHECK_FALSE(f.stored(image_record_key("foreign")));
        CHECK_FALSE(f.stored(use_marker_key(digest('f'))));
        CHECK_FALSE(f.stored(use_marker_key(digest('7'))));
        CHECK(f.said("delete image foreign (known from its shared record)"));
    }
    SUBCASE("objects younger than an hour stay: another instance's build in flight") {
        f.modified(blob_key(hex('c')), k_now - 600);         // uploaded, image not recorded yet
        f.modified(layer_record_key("layer-b"), k_now - 60); // 'b' was just packed again
        f.marker(digest('9'), k_now - 60);       // an image whose record is not written yet
        f.marker(digest('6'), k_now - 2 * 3600); // an image gone long ago
        auto report = f.collect(30, false);
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(f.stored('c'));
        CHECK(f.stored('b'));
        CHECK(report->young_blobs == 2);
        CHECK(f.stored(use_marker_key(digest('9'))));
        CHECK_FALSE(f.stored(use_marker_key(digest('6'))));
        CHECK(report->images == 1); // "old", whose record is 'old' too
    }
    SUBCASE("a layer another instance reuses after gc planned to delete it stays") {
        // gc plans, then waits for a build of this instance to record its
        // image; meanwhile a build on another instance reuses layer-b and
        // rewrites its record, as the builder does before checking the blob.
        auto builder_lock = f.locks->acquire(k_gc_lock, 0ms, LockMode::shared);
        REQUIRE(builder_lock);
        REQUIRE(*builder_lock);
        auto gc = std::async(std::launch::async, [&] { return f.collect(30, false); });
        REQUIRE(gc.wait_for(300ms) == std::future_status::timeout);
        REQUIRE(f.storage->put(layer_record_key("layer-b"),
                               encode_layer_record({digest('b'), digest('e'), 100}), "x"));
        f.modified(layer_record_key("layer-b"), k_now);
        builder_lock->reset();
        auto report = gc.get();
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(f.stored('b'));
        CHECK(f.stored(layer_record_key("layer-b")));
        CHECK_FALSE(f.stored('c'));
        CHECK(report->young_blobs == 1);
    }
    SUBCASE("the history beyond the window is pruned") {
        for (int i = 0; i < k_builds_kept + 10; ++i) {
            auto build = f.cache->db().prepare(
                "INSERT INTO builds (image, tag, image_key, started_at, duration, pid) VALUES "
                "('a', 'latest', 'k', ?1, 1, 1)");
            REQUIRE(build);
            build->bind(1, static_cast<std::int64_t>(k_now - 40 * k_day + i));
            REQUIRE(build->run());
        }
        REQUIRE(f.cache->record_tag("a", "old", k_now - 40 * k_day));
        REQUIRE(f.cache->record_tag("a", "new", k_now - k_day));
        auto report = f.collect(30, false);
        REQUIRE(report);
        CHECK(report->builds == 10);
        CHECK(f.cache->recent_builds(1000)->size() == static_cast<std::size_t>(k_builds_kept));
        CHECK(report->tags == 1);
        CHECK(*f.cache->tags("a") == std::vector<std::string>{"new"});
    }
    SUBCASE("remembered failures go once expired") {
        const Failure err{FailureKind::failed, "x", "building \"x\" failed", "{}", ""};
        constexpr std::int64_t k_any = std::numeric_limits<std::int64_t>::max();
        REQUIRE(f.cache->remember_failure("expired", err, 0, k_now - 30, k_any));
        REQUIRE(f.cache->remember_failure("live", err, 0, k_now + 30, k_any));
        REQUIRE(f.collect(30, false));
        auto s = f.cache->db().prepare("SELECT group_concat(image_key) FROM failures");
        REQUIRE(s);
        REQUIRE(*s->step());
        CHECK(s->text(0) == "live");
    }
    SUBCASE("a build holding the gc lock keeps what it is about to reference") {
        // The builder has looked 'c' up (or just packed it) and not yet
        // recorded its image: the window gc must not delete in.
        auto builder_lock = f.locks->acquire(k_gc_lock, 0ms, LockMode::shared);
        REQUIRE(builder_lock);
        REQUIRE(*builder_lock);
        auto gc = std::async(std::launch::async, [&] { return f.collect(30, false); });
        CHECK(gc.wait_for(300ms) == std::future_status::timeout); // gc waits for the build
        CHECK(f.stored('c'));
        CHECK(f.stored('b'));
        {
            // The build records its image (through its own connection).
            auto db = Db::open(f.config.database(), "sql");
            REQUIRE(db);
            BuildCache builder_cache(std::move(*db));
            ImageRecord r{digest('f'), "{}", digest('f'), "{}", digest('f'), {digest('c')}};
            REQUIRE(builder_cache.record_image("built-now", r, k_now));
        }
        builder_lock->reset();
        auto report = gc.get();
        REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
        CHECK(f.stored('c'));
        CHECK_FALSE(f.stored('b'));
        CHECK(report->blobs == 1);
    }
}

namespace {

// The fixture's storage, seen through a hook run right before a removal of
// `key`: what another instance does at that moment.
class RemoveHook final : public StorageBackend {
public:
    RemoveHook(StorageBackend& inner, std::string key, std::function<void()> hook)
        : m_inner(inner), m_key(std::move(key)), m_hook(std::move(hook)) {}
    std::string describe() const override { return m_inner.describe(); }
    Result<void> check() override { return m_inner.check(); }
    const std::filesystem::path& staging_dir() const override { return m_inner.staging_dir(); }
    Result<void> persist(StagingFile staged, std::string_view key,
                         std::string_view content_type) override {
        return m_inner.persist(std::move(staged), key, content_type);
    }
    Result<void> put(std::string_view key, std::string_view data,
                     std::string_view content_type) override {
        return m_inner.put(key, data, content_type);
    }
    Result<std::optional<std::string>> fetch(std::string_view key) override {
        return m_inner.fetch(key);
    }
    Result<bool> read(std::string_view key, const ObjectSink& sink) override {
        return m_inner.read(key, sink);
    }
    Result<std::optional<ObjectInfo>> stat(std::string_view key) override {
        return m_inner.stat(key);
    }
    Result<BlobLocation> locate(std::string_view key) override { return m_inner.locate(key); }
    Result<void> remove(std::string_view key) override {
        if (key == m_key && m_hook) {
            std::exchange(m_hook, {})();
        }
        return m_inner.remove(key);
    }
    Result<std::vector<StoredObject>> list(std::string_view prefix) override {
        return m_inner.list(prefix);
    }

private:
    StorageBackend& m_inner;
    std::string m_key;
    std::function<void()> m_hook;
};

} // namespace

TEST_CASE("collect_garbage: an instance that uses an image while gc deletes it") {
    // Another instance uses an image nobody used for 40 days right before
    // gc removes its record: it writes its marker, then finds the record
    // still there, and trusts the image's blobs for a day. gc must then
    // keep them, or that instance serves manifests of deleted blobs.
    Fixture f;
    for (const char c : {'c', 'f', '7', '8'}) {
        f.store_blob(c, false);
    }
    f.foreign_image("foreign", {digest('c'), digest('f'), digest('7'), digest('8')},
                    k_now - 90 * k_day);
    f.marker(digest('7'), k_now - 40 * k_day);
    const ImageRecord used{digest('f'), "{}",
                           digest('7'), "{}",
                           digest('8'), {digest('c'), digest('f'), digest('7'), digest('8')}};
    auto other_db = Db::open(f.dir / "other.sqlite", "sql");
    REQUIRE(other_db);
    BuildCache other(std::move(*other_db));
    std::optional<SharedImage> seen;
    RemoveHook storage(*f.storage, image_record_key("foreign"), [&] {
        seen = record_image_use(other, *f.storage, "foreign", used, k_now);
        f.modified(use_marker_key(digest('7')), k_now); // its use, now
    });
    std::vector<std::string> said;
    auto report = collect_garbage({f.config, storage, f.cache->db(), &*f.locks}, {30, false}, k_now,
                                  [&](std::string_view l) { said.emplace_back(l); });
    REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
    REQUIRE(seen);
    if (*seen == SharedImage::present) {
        for (const char c : {'c', 'f', '7', '8'}) {
            CHECK_MESSAGE(f.stored(c), "blob " << c << " of an image in use was deleted");
        }
        // What gc says is what it did: kept, not deleted and then kept.
        const auto says = [&](const std::string& text) {
            return std::any_of(said.begin(), said.end(), [&](const std::string& l) {
                return l.find(text) != std::string::npos;
            });
        };
        CHECK(says("keep image foreign"));
        CHECK_FALSE(says("delete image foreign"));
    }
}

TEST_CASE("collect_garbage: leftovers of killed processes") {
    Fixture f;
    namespace fs = std::filesystem;
    const auto old = fs::file_time_type::clock::now() - 2h;
    const auto staging = f.config.storage_path / "staging";
    testutil::write_file(staging / "0000000000000001.tmp", "stale");
    testutil::write_file(staging / "0000000000000002.tmp", "fresh");
    fs::last_write_time(staging / "0000000000000001.tmp", old);
    // GC roots of builds: one whose worker died (its pid is gone), one
    // whose worker died and whose pid another process has now (this one:
    // after a restart pids are handed out again), one still building (its
    // image's build lock is held), and a fresh one.
    auto dead = f.cache->db().prepare(
        "INSERT INTO builds (id, image, tag, image_key, started_at, pid) VALUES "
        "(7, 'x', 'latest', 'k7', 0, 2147483000), (8, 'y', 'latest', 'k8', 0, ?1), "
        "(10, 'z', 'latest', 'k10', 0, ?1)");
    REQUIRE(dead);
    dead->bind(1, static_cast<std::int64_t>(getpid()));
    REQUIRE(dead->run());
    for (const char* id : {"7", "8", "9", "10"}) {
        fs::create_directories(f.config.state_dir / "gcroots" / id);
    }
    for (const char* id : {"7", "8", "10"}) {
        fs::last_write_time(f.config.state_dir / "gcroots" / id, old);
    }
    // Git export work directories: one a killed worker left, one in use
    // (fresh), and a mirror, which is no work directory.
    const auto git = f.config.state_dir / "git";
    testutil::write_file(git / "export-Ab12Cd" / "source.tar", "tar");
    testutil::write_file(git / "export-Ef34Gh" / "source.tar", "tar");
    testutil::write_file(git / "0123456789abcdef.git" / "HEAD", "ref: refs/heads/main\n");
    fs::last_write_time(git / "export-Ab12Cd", old);
    fs::last_write_time(git / "0123456789abcdef.git", old);
    // The lock a builder holds, on a descriptor of its own.
    const LockTable builder_locks(f.config.lock_file());
    auto building = builder_locks.try_acquire(image_build_lock("k8"));
    REQUIRE(building);
    REQUIRE(*building);

    // gc compares with the real clock here: staging files are not in SQLite.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::vector<std::string> said;
    auto report = collect_garbage({f.config, *f.storage, f.cache->db(), &*f.locks}, {30, false},
                                  now, [&](std::string_view l) { said.emplace_back(l); });
    REQUIRE_MESSAGE(report, (report ? "" : report.error().message));
    CHECK(report->staging_files == 1);
    CHECK(report->staging_bytes == 5);
    CHECK_FALSE(fs::exists(staging / "0000000000000001.tmp"));
    CHECK(fs::exists(staging / "0000000000000002.tmp"));
    CHECK(report->gc_roots == 2);
    CHECK_FALSE(fs::exists(f.config.state_dir / "gcroots" / "7"));
    CHECK(fs::exists(f.config.state_dir / "gcroots" / "8"));
    CHECK(fs::exists(f.config.state_dir / "gcroots" / "9"));
    CHECK_FALSE(fs::exists(f.config.state_dir / "gcroots" / "10"));
    CHECK(report->work_dirs == 1);
    CHECK_FALSE(fs::exists(git / "export-Ab12Cd"));
    CHECK(fs::exists(git / "export-Ef34Gh" / "source.tar"));
    CHECK(fs::exists(git / "0123456789abcdef.git" / "HEAD"));
    // The rows of the dead builds end as interrupted (the start page no
    // longer shows them building); the running one's stays open.
    CHECK(report->interrupted_builds == 2);
    CHECK(std::count(said.begin(), said.end(), "end build 10 of z as interrupted") == 1);
    auto rows = f.cache->db().prepare("SELECT id, status, error, duration FROM builds ORDER BY id");
    REQUIRE(rows);
    for (const auto id : {7, 8, 10}) {
        REQUIRE(*rows->step());
        CHECK(rows->integer(0) == id);
        if (id == 8) {
            CHECK(rows->is_null(3));
        } else {
            CHECK(rows->integer(1) == 503);
            CHECK(rows->text(2).find("interrupted") != std::string::npos);
            CHECK(rows->real(3) >= 0);
        }
    }
}

TEST_CASE("describe_bytes") {
    CHECK(describe_bytes(12) == "12 bytes");
    CHECK(describe_bytes(1536) == "1536 bytes (1.5 KiB)");
    CHECK(describe_bytes(3u << 30) == "3221225472 bytes (3.0 GiB)");
}

TEST_SUITE_END();
