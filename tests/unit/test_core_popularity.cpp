#include "core/popcount.hpp"
#include "core/popularity.hpp"

#include <doctest/doctest.h>

using namespace nixery;

namespace {

const std::string k_hash(32, 'h');

std::string sp(const std::string& name) {
    return "/nix/store/" + k_hash + "-" + name;
}

std::string base(char hash_char, const std::string& name) {
    return std::string(32, hash_char) + "-" + name;
}

} // namespace

TEST_CASE("versionless_name") {
    CHECK(versionless_name("glibc-2.40-66") == "glibc");
    CHECK(versionless_name("openssl-3.0.13-bin") == "openssl-bin");
    CHECK(versionless_name("util-linux-minimal-2.39.4-lib") == "util-linux-minimal-lib");
    CHECK(versionless_name("python3.12-requests-2.31.0") == "python3.12-requests");
    CHECK(versionless_name("zlib1g-1.2.13.dfsg-1+deb12u1") == "zlib1g");
    CHECK(versionless_name("hook") == "hook");
    CHECK(versionless_name("nss-cacert") == "nss-cacert");
}

TEST_CASE("Popularity::of_store_path") {
    const auto pop =
        *Popularity::parse(R"({"zlib-1.3": 300, "zlib-1.2": 50, "openssl-3.0-bin": 70})");
    SUBCASE("a listed name counts as listed") {
        CHECK(pop.of_store_path(sp("zlib-1.2")) == 50);
        CHECK(pop.of_store_path(sp("zlib-1.3")) == 300);
    }
    SUBCASE("an unlisted version counts as its most popular listed version") {
        CHECK(pop.of_store_path(sp("zlib-1.4")) == 300);
        CHECK(pop.of_store_path(sp("openssl-3.1-bin")) == 70);
    }
    SUBCASE("another output of a listed package is another name") {
        CHECK(pop.of_store_path(sp("openssl-3.1")) == 1);
        CHECK(pop.of_store_path(sp("zlib-1.4-dev")) == 1);
    }
    SUBCASE("unknown names count 1") {
        CHECK(pop.of_store_path(sp("zstd-1.5")) == 1);
        CHECK(Popularity().of_store_path(sp("zlib-1.3")) == 1);
    }
    SUBCASE("errors name the problem") {
        CHECK(Popularity::parse("[1]").error().message.find("not a JSON object") !=
              std::string::npos);
        CHECK(Popularity::parse(R"({"a": "x"})").error().message.find("\"a\"") !=
              std::string::npos);
    }
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
