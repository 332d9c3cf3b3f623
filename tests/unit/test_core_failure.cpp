#include "core/failure.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("registry_error") {
    SUBCASE("each kind has its status and the spec's code") {
        struct Case {
            FailureKind kind;
            int status;
            const char* code;
        };
        for (const auto& c : {Case{FailureKind::unknown, 404, "MANIFEST_UNKNOWN"},
                              Case{FailureKind::failed, 404, "MANIFEST_UNKNOWN"},
                              Case{FailureKind::refused, 403, "DENIED"},
                              Case{FailureKind::busy, 503, "UNAVAILABLE"},
                              Case{FailureKind::unavailable, 503, "UNAVAILABLE"},
                              Case{FailureKind::overloaded, 429, "TOOMANYREQUESTS"},
                              Case{FailureKind::fault, 500, "INTERNAL_ERROR"}}) {
            CAPTURE(failure_kind_name(c.kind));
            const auto e = registry_error({c.kind, "x failed", "message", {}, {}});
            CHECK(e.status == c.status);
            CHECK(e.code == c.code);
            CHECK(e.message == "message");
        }
    }
    SUBCASE("the client gets the message, detail and Retry-After, never the internal text") {
        auto f = busy("the package source is being fetched; retry later", 30);
        f.detail = R"({"commit":"abc"})";
        f.internal = "git fetch /var/lib/nixery/git/x.git failed";
        const auto e = registry_error(f);
        CHECK(e.retry_after == 30);
        CHECK(e.detail == f.detail);
        CHECK(error_json(e).find("/var/lib") == std::string::npos);
        CHECK(error_json(e).find("being fetched") != std::string::npos);
    }
    SUBCASE("a fault keeps its detail") {
        auto f = fault("building \"x\" failed on the server", "write \"/srv/x\" failed");
        const auto e = registry_error(f);
        CHECK(e.status == 500);
        CHECK(e.message == "building \"x\" failed on the server");
        CHECK(e.detail.empty());
    }
}

TEST_CASE("failure helpers") {
    SUBCASE("source_unavailable names the source and the cause, for the client") {
        const auto f = source_unavailable("git repository https://example.org/p.git", "timed out");
        CHECK(f.kind == FailureKind::unavailable);
        CHECK(f.what == "package source unavailable");
        CHECK(f.message == "the package source (git repository https://example.org/p.git) cannot "
                           "be reached: timed out; retry later");
        CHECK(needs_operator(f.kind));
    }
    SUBCASE("fault keeps the internal text apart") {
        const auto f = fault("reading the cache failed", "sqlite \"/srv/db\" failed: locked");
        CHECK(f.kind == FailureKind::fault);
        CHECK(f.message.find("/srv") == std::string::npos);
        CHECK(f.internal == "sqlite \"/srv/db\" failed: locked");
        CHECK(needs_operator(f.kind));
    }
    SUBCASE("unknown and busy are routine") {
        CHECK(unknown("no such tag", "\"v9\"").detail == "\"v9\"");
        CHECK_FALSE(needs_operator(FailureKind::unknown));
        CHECK_FALSE(needs_operator(FailureKind::busy));
        CHECK_FALSE(needs_operator(FailureKind::refused));
    }
}

TEST_CASE("is_transient") {
    // A user's mistake is held against retries; the server's state is not.
    CHECK_FALSE(is_transient(FailureKind::unknown));
    CHECK_FALSE(is_transient(FailureKind::failed));
    CHECK_FALSE(is_transient(FailureKind::refused));
    CHECK(is_transient(FailureKind::busy));
    CHECK(is_transient(FailureKind::unavailable));
    CHECK(is_transient(FailureKind::overloaded));
    CHECK(is_transient(FailureKind::fault));
}

TEST_CASE("failure_kind_name") {
    for (auto kind :
         {FailureKind::unknown, FailureKind::failed, FailureKind::refused, FailureKind::busy,
          FailureKind::unavailable, FailureKind::overloaded, FailureKind::fault}) {
        FailureKind back = FailureKind::fault;
        REQUIRE(parse_failure_kind(failure_kind_name(kind), back));
        CHECK(back == kind);
    }
    FailureKind out = FailureKind::busy;
    CHECK_FALSE(parse_failure_kind("no-such-kind", out));
    CHECK(out == FailureKind::busy);
}

TEST_SUITE_END();
