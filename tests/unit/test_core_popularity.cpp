#include "core/popularity.hpp"

#include <cstdint>
#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

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
