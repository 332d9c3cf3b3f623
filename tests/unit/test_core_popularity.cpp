#include "core/popularity.hpp"

#include <cstdint>
#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

namespace {

const std::string k_hash(32, 'h');

std::string sp(const std::string& name) {
    return "/nix/store/" + k_hash + "-" + name;
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
    SUBCASE("deep nesting is an error, not a crash (the data comes over the network)") {
        const std::size_t depth = 1'000'000;
        const auto deep = "{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
        CHECK_FALSE(Popularity::parse(deep));
    }
}

TEST_CASE("Popularity::parse") {
    SUBCASE("counts as integers or numbers; huge ones clamped (found by fuzzing)") {
        const auto p = Popularity::parse(
            R"({"glibc-2.40": 4000, "big": 1e30, "huger": 18446744073709551615})");
        REQUIRE(p);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc-2.40") == 4000);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big") ==
              std::uint64_t{1} << 32);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-huger") ==
              std::uint64_t{1} << 32);
        CHECK(p->of_store_path("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cacert-3.9") >
              (std::uint64_t{1} << 32));
    }
    SUBCASE("a negative count is an error naming the package") {
        const auto p = Popularity::parse(R"({"x": -1})");
        REQUIRE_FALSE(p);
        CHECK(p.error().message.find("\"x\"") != std::string::npos);
    }
}

TEST_SUITE_END();
