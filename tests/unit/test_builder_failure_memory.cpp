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
    Failure err{FailureKind::failed, "nix failed", "building \"x\" failed: Nix said no",
                R"({"log":"no"})", "nix-build /srv/x failed"};
    constexpr std::int64_t now = 1000;

    CHECK_FALSE(*remembered_failure(cache, "img", now));
    remember_failure(cache, "img", err, now);
    SUBCASE("answered with the same failure while remembered, without its internal text") {
        const auto found = remembered_failure(cache, "img", now + k_failure_memory.count() - 1);
        REQUIRE(*found);
        CHECK((*found)->kind == FailureKind::failed);
        CHECK((*found)->what == err.what);
        CHECK((*found)->message == err.message);
        CHECK((*found)->detail == err.detail);
        CHECK((*found)->internal.empty());
        CHECK((*found)->remembered);
        CHECK(registry_error(**found).status == 404);
        CHECK_FALSE(*remembered_failure(cache, "other", now));
    }
    SUBCASE("forgotten after k_failure_memory") {
        CHECK_FALSE(*remembered_failure(cache, "img", now + k_failure_memory.count()));
    }
    SUBCASE("a transient failure only for k_fault_memory, with its Retry-After") {
        remember_failure(cache, "img", busy("being fetched", 30), now);
        const auto found = remembered_failure(cache, "img", now + k_fault_memory.count() - 1);
        REQUIRE(*found);
        CHECK((*found)->kind == FailureKind::busy);
        CHECK((*found)->retry_after == 30);
        CHECK_FALSE(*remembered_failure(cache, "img", now + k_fault_memory.count()));
    }
    SUBCASE("not answered for hours when the clock stepped back since") {
        CHECK_FALSE(*remembered_failure(cache, "img", now - 3600));
        CHECK(*remembered_failure(cache, "img", now)); // nor deleted by merely asking
    }
    SUBCASE("answered to a thread whose clock was read a moment earlier, and kept") {
        remember_failure(cache, "other", err, now + 1);
        CHECK(*remembered_failure(cache, "other", now));
        remember_failure(cache, "third", err, now);
        CHECK(*remembered_failure(cache, "other", now));
    }
}

TEST_SUITE_END();
