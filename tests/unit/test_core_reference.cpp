#include "core/reference.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

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
    CHECK(check_digest("sha512:" + std::string(128, 'a')) == DigestCheck::unsupported);
    CHECK(check_digest("sha256:" + std::string(63, 'a')) == DigestCheck::malformed);
    CHECK(check_digest("sha256:" + std::string(64, 'A')) == DigestCheck::malformed);
    CHECK(check_digest("sha256:../../etc/passwd") == DigestCheck::malformed);
    CHECK(check_digest("nocolon") == DigestCheck::malformed);
    CHECK(check_digest(":abc") == DigestCheck::malformed);
    CHECK(check_digest("sha512:abc") == DigestCheck::unsupported);
}

TEST_SUITE_END();

TEST_CASE("split_name_and_tag") {
    const auto check = [](std::string_view text, std::string_view name, std::string_view tag) {
        CAPTURE(text);
        const auto split = split_name_and_tag(text);
        CHECK(split.name == name);
        CHECK(split.tag == tag);
    };
    check("shell/hello", "shell/hello", "latest");
    check("shell/hello:v1", "shell/hello", "v1");
    check("hello:", "hello", "");
    check("a:b/c", "a:b/c", "latest"); // a colon before a slash is no tag (and no valid name)
    check("a/b:c:d", "a/b", "c:d");    // nor a tag with a colon
}
