#include "core/popcount.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

std::string base(char hash_char, const std::string& name) {
    return std::string(32, hash_char) + "-" + name;
}

} // namespace

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

TEST_CASE("store_base_name") {
    CHECK(store_base_name("/nix/store/" + base('a', "hello-2.12")) == base('a', "hello-2.12"));
    CHECK(store_base_name(base('0', "x")) == base('0', "x"));
    CHECK(!store_base_name(base('e', "hello"))); // 'e' is not in Nix's base-32
    CHECK(!store_base_name(base('a', "../etc")));
    CHECK(!store_base_name(base('a', "a/b")));
    CHECK(!store_base_name(base('a', "")));
    CHECK(!store_base_name("/nix/store/short-name"));
    CHECK(store_hash(base('a', "x")) == std::string(32, 'a'));
}

TEST_CASE("parse_narinfo") {
    SUBCASE("size and references") {
        const auto info =
            parse_narinfo("StorePath: /nix/store/" + base('a', "app") +
                          "\nURL: nar/x.nar.xz\nNarSize: 1234\nReferences: " + base('a', "app") +
                          " " + base('b', "lib") + "\nSig: cache.nixos.org-1:xyz\n");
        REQUIRE(info);
        CHECK(info->nar_size == 1234);
        CHECK(info->references == std::vector<std::string>{base('a', "app"), base('b', "lib")});
    }
    SUBCASE("no references") {
        const auto info = parse_narinfo("StorePath: /nix/store/" + base('a', "x") +
                                        "\nNarSize: 1\nReferences: \n");
        REQUIRE(info);
        CHECK(info->references.empty());
    }
    SUBCASE("what is not a narinfo is an error") {
        CHECK(!parse_narinfo("<html>not found</html>"));
        CHECK(!parse_narinfo("StorePath: /nix/store/x\nNarSize: many\n"));
        CHECK(parse_narinfo("StorePath: /nix/store/x\nNarSize: 1\nReferences: ../../etc/passwd\n")
                  .error()
                  .message.find("not a store path") != std::string::npos);
    }
}

TEST_CASE("journal lines") {
    NarInfo info{42, {base('b', "lib"), base('c', "libc")}};
    const auto line = journal_line(base('a', "app"), info);
    CHECK(line == base('a', "app") + " 42 " + base('b', "lib") + " " + base('c', "libc") + "\n");
    const auto back = parse_journal_line(line);
    REQUIRE(back);
    CHECK(back->base_name == base('a', "app"));
    REQUIRE(back->info);
    CHECK(back->info->nar_size == 42);
    CHECK(back->info->references == info.references);

    const auto missing = parse_journal_line(journal_line(base('d', "gone"), std::nullopt));
    REQUIRE(missing);
    CHECK(!missing->info);

    CHECK(!parse_journal_line(line.substr(0, line.size() - 1))); // torn: no newline
    CHECK(!parse_journal_line(line.substr(0, 46) + "\n"));       // a cut reference
    CHECK(!parse_journal_line("garbage 1\n"));
}

TEST_CASE("StorePathGraph::count") {
    // app1 → lib-1.0 → libc; app2 → lib-2.0 → libc; tool → libc; app1 also
    // lists itself, as Nix does.
    StorePathGraph g;
    const auto app1 = g.intern(base('a', "app1"));
    const auto app2 = g.intern(base('b', "app2"));
    const auto tool = g.intern(base('c', "tool"));
    const auto lib1 = g.intern(base('d', "lib-1.0"));
    const auto lib2 = g.intern(base('f', "lib-1.0")); // same name, another build
    const auto libc = g.intern(base('g', "libc-2.40"));
    CHECK(g.intern(base('a', "app1")) == app1);
    CHECK(g.find(base('g', "libc-2.40")) == libc);
    CHECK(!g.find(base('z', "libc-2.40")));
    g.set_references(app1, {app1, lib1});
    g.set_references(app2, {lib2, libc});
    g.set_references(tool, {libc});
    g.set_references(lib1, {libc});
    g.set_references(lib2, {libc});
    // A package counts a name once, even through two paths of that name.
    g.set_references(tool, {libc, lib1, lib2});
    const auto counts = g.count({app1, app2, tool, lib1, app1});
    CHECK(counts == std::map<std::string, std::uint64_t>{{"lib-1.0", 3}, {"libc-2.40", 4}});
}

TEST_SUITE_END();
