#include "core/image.hpp"
#include "core/reference.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_CASE("is_valid_repository_name") {
    for (const char* ok : {"hello", "shell/git/htop", "xorg.xev", "a_b", "a__b", "a---b", "7zip",
                           "python3", "haskellpackages.pandoc"}) {
        CAPTURE(ok);
        CHECK(is_valid_repository_name(ok));
    }
    for (const char* bad : {"", "Hello", "a//b", "/a", "a/", "-a", "a-", "a___b", "a..b", "_a",
                            "a b", "a/../b", "a%2fb", "a:b"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_valid_repository_name(bad));
    }
    CHECK(is_valid_repository_name(std::string(255, 'a')));
    CHECK_FALSE(is_valid_repository_name(std::string(256, 'a')));
}

TEST_CASE("is_valid_tag") {
    CHECK(is_valid_tag("latest"));
    CHECK(is_valid_tag("release-v2"));
    CHECK(is_valid_tag("_x.Y-1"));
    CHECK(is_valid_tag(std::string(128, 'a')));
    CHECK_FALSE(is_valid_tag(std::string(129, 'a')));
    CHECK_FALSE(is_valid_tag(""));
    CHECK_FALSE(is_valid_tag(".x"));
    CHECK_FALSE(is_valid_tag("-x"));
    CHECK_FALSE(is_valid_tag("a/b"));
    CHECK_FALSE(is_valid_tag("a;rm -rf"));
}

TEST_CASE("check_digest") {
    const std::string hex(64, 'a');
    CHECK(check_digest("sha256:" + hex) == DigestCheck::ok);
    CHECK(parse_digest("sha256:" + hex)->hex == hex);
    CHECK(check_digest("sha512:" + std::string(128, 'a')) == DigestCheck::unsupported);
    CHECK(check_digest("sha256:" + std::string(63, 'a')) == DigestCheck::malformed);
    CHECK(check_digest("sha256:" + std::string(64, 'A')) == DigestCheck::malformed);
    CHECK(check_digest("sha256:../../etc/passwd") == DigestCheck::malformed);
    CHECK(check_digest("nocolon") == DigestCheck::malformed);
    CHECK(check_digest(":abc") == DigestCheck::malformed);
    CHECK_FALSE(parse_digest("sha512:abc"));
}

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
