#include "core/image.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("parse_image_name") {
    SUBCASE("components are sorted and deduplicated") {
        const auto a = parse_image_name("htop/git/git");
        CHECK(a.packages == std::vector<std::string>{"git", "htop"});
        CHECK(a.arch == Arch::amd64);
        CHECK(parse_image_name("git/htop").packages == a.packages);
    }
    SUBCASE("shell expands to the shell packages") {
        const auto img = parse_image_name("shell/htop");
        CHECK(img.packages == std::vector<std::string>{"bashInteractive", "coreutils", "htop",
                                                       "moreutils", "nano"});
    }
    SUBCASE("arm64 selects the architecture, in either leading order") {
        const auto a = parse_image_name("arm64/shell/hello");
        const auto b = parse_image_name("shell/arm64/hello");
        CHECK(a.arch == Arch::arm64);
        CHECK(b.arch == Arch::arm64);
        CHECK(a.packages == b.packages);
        CHECK(nix_system(a.arch) == "aarch64-linux");
        CHECK(oci_architecture(a.arch) == "arm64");
    }
    SUBCASE("meta-packages elsewhere are ordinary package names") {
        const auto img = parse_image_name("hello/shell/arm64");
        CHECK(img.arch == Arch::amd64);
        CHECK(img.packages == std::vector<std::string>{"arm64", "hello", "shell"});
    }
    SUBCASE("nested attribute paths") {
        CHECK(attribute_path("xorg.xev") == std::vector<std::string>{"xorg", "xev"});
        CHECK(attribute_path("hello") == std::vector<std::string>{"hello"});
    }
}

TEST_SUITE_END();
