#include "core/popcount.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("count_popularity") {
    // app1 → lib → libc, app2 → lib → libc, app2 → libc, tool → libc
    const auto h = std::string(32, 'h');
    const auto p = [&](const char* name) { return "/nix/store/" + h + "-" + name; };
    ClosureGraph g;
    g.paths = {{p("app1"), 1, {p("app1"), p("lib-1.0")}},
               {p("app2"), 1, {p("lib-1.0"), p("libc-2.40")}},
               {p("tool"), 1, {p("libc-2.40")}},
               {p("lib-1.0"), 1, {p("libc-2.40")}},
               {p("libc-2.40"), 1, {}}};
    const auto counts = count_popularity(g, {p("app1"), p("app2"), p("tool"), p("lib-1.0"),
                                             p("app1"), p("libc-2.40"), p("not-built")});
    CHECK(counts == std::map<std::string, std::uint64_t>{{"lib-1.0", 2}, {"libc-2.40", 4}});
    CHECK(popularity_json(counts) == "{\n  \"lib-1.0\": 2,\n  \"libc-2.40\": 4\n}");
}

TEST_SUITE_END();
