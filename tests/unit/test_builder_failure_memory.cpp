#include "builder/failure_memory.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

using namespace nixery;
using testutil::TempDir;

TEST_SUITE_BEGIN("builder");

TEST_CASE("failure memory") {
    TempDir dir;
    auto db = Db::open(dir / "cache.sqlite", "sql");
    REQUIRE_MESSAGE(db, (db ? "" : db.error().message));
    BuildCache cache(std::move(*db));
    const RegistryError err = manifest_unknown("building \"x\" failed: Nix said no");
    constexpr std::int64_t now = 1000;

    CHECK_FALSE(*remembered_failure(cache, "img", now));
    remember_failure(cache, "img", err, now);
    SUBCASE("answered with the same error while remembered") {
        const auto found = remembered_failure(cache, "img", now + k_failure_memory.count() - 1);
        REQUIRE(*found);
        CHECK((*found)->status == 404);
        CHECK((*found)->code == "MANIFEST_UNKNOWN");
        CHECK((*found)->message == err.message);
        CHECK_FALSE(*remembered_failure(cache, "other", now));
    }
    SUBCASE("forgotten after k_failure_memory") {
        CHECK_FALSE(*remembered_failure(cache, "img", now + k_failure_memory.count()));
    }
}

TEST_SUITE_END();
