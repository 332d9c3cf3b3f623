#include "cache/build_cache.hpp"
#include "testutil.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nixery;
using testutil::k_sql;
using testutil::open_cache;
using testutil::TempDir;

namespace {

std::string digest(char c) {
    return "sha256:" + std::string(64, c);
}

} // namespace

TEST_SUITE_BEGIN("cache");

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
        const auto failures = *cache.recent_builds(10, BuildCache::Builds::failed);
        REQUIRE(failures.size() == 1);
        CHECK(failures[0].error == "it broke");
        CHECK(cache.builds_of("hello", "latest")->size() == 1);
    }
    SUBCASE("failures are remembered until they expire") {
        const auto err = unknown("nope", R"({"missing":["x"]})");
        REQUIRE(cache.remember_failure("img", err, 100, 130, 160));
        const auto hit = *cache.find_failure("img", 100, 160);
        REQUIRE(hit);
        CHECK(hit->kind == FailureKind::unknown);
        CHECK(hit->message == err.message);
        CHECK(hit->detail == err.detail);
        CHECK(hit->remembered);
        CHECK_FALSE(*cache.find_failure("img", 130, 190));
        // Expired rows go when another failure is remembered, not a day
        // later with gc: each is one request away for anyone.
        REQUIRE(cache.remember_failure("other", err, 129, 160, 189));
        const auto rows = [&] {
            auto s = cache.db().prepare("SELECT count(*) FROM failures");
            REQUIRE(s);
            REQUIRE(*s->step());
            return s->integer(0);
        };
        CHECK(rows() == 2);
        REQUIRE(cache.remember_failure("third", err, 130, 160, 190));
        CHECK(rows() == 2);
        CHECK_FALSE(*cache.find_failure("img", 0, 30));
        // The wall clock stepped back an hour: failures remembered before
        // are not answered for that hour, and go with the next one.
        CHECK_FALSE(*cache.find_failure("other", 130 - 3600, 130 - 3600 + 30));
        REQUIRE(cache.remember_failure("fourth", err, 130 - 3600, 160 - 3600, 130 - 3600 + 30));
        CHECK(rows() == 1);
    }
    SUBCASE("the build history keeps its newest builds, and any still open") {
        const auto open = *cache.start_build("running", "latest", "k0", 1.0);
        std::int64_t last = 0;
        for (int i = 0; i < BuildCache::k_build_history + 5; ++i) {
            last = *cache.start_build("img", "t", "k", 2.0 + i);
            REQUIRE(cache.finish_build(last, 1.0, 0, 0, 404, "unknown"));
        }
        auto s =
            cache.db().prepare("SELECT count(*), min(id) FROM builds WHERE duration IS NOT NULL");
        REQUIRE(s);
        REQUIRE(*s->step());
        CHECK(s->integer(0) == BuildCache::k_build_history);
        CHECK(s->integer(1) == last - BuildCache::k_build_history + 1);
        CHECK(cache.builds_of("running", "latest")->size() == 1);
        (void)open;
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

TEST_SUITE_END();
