#include "util/text.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("util");

TEST_CASE("trim_blanks") {
    CHECK(trim_blanks("  a b\t") == "a b");
    CHECK(trim_blanks("value\r\n") == "value");
    CHECK(trim_blanks(" \t\r\n") == "");
    CHECK(trim_blanks("") == "");
    CHECK(trim_blanks("x") == "x");
}

TEST_CASE("ascii_lowercase and is_lower_hex") {
    CHECK(ascii_lowercase("Content-Type: ÄB") == "content-type: Äb");
    CHECK(is_lower_hex(std::string(64, 'a'), 64));
    CHECK_FALSE(is_lower_hex(std::string(64, 'A'), 64));
    CHECK_FALSE(is_lower_hex(std::string(63, 'a'), 64));
    CHECK_FALSE(is_lower_hex(std::string(39, '0') + "g", 40));
}

TEST_CASE("public_cause") {
    CHECK(public_cause("write \"/var/x/y\" failed: No space left on device") ==
          "No space left on device");
    CHECK(public_cause("sqlite \"INSERT INTO t\" failed: database or disk is full") ==
          "database or disk is full");
    CHECK(public_cause("PUT \"https://b.s3/x\" failed: HTTP 403: bucket /acme denied") == "");
    CHECK(public_cause("something odd") == "");
}

TEST_CASE("valid_utf8") {
    CHECK(valid_utf8("hello, \u00E9\u4E16\U0001F600") == "hello, \u00E9\u4E16\U0001F600");
    CHECK(valid_utf8("\xFF") == "\uFFFD");
    CHECK(valid_utf8("a\xE9"
                     "b") == "a\uFFFDb");                                // Latin-1
    CHECK(valid_utf8("\xC0\xAF") == "\uFFFD\uFFFD");                     // overlong "/"
    CHECK(valid_utf8("\xED\xA0\x80") == "\uFFFD\uFFFD\uFFFD");           // a surrogate
    CHECK(valid_utf8("\xF4\x90\x80\x80") == "\uFFFD\uFFFD\uFFFD\uFFFD"); // > U+10FFFF
    CHECK(valid_utf8("\xE4\xB8") == "\uFFFD\uFFFD");                     // cut short
    CHECK(valid_utf8(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("parse_decimal") {
    CHECK(parse_decimal("0", 10) == 0U);
    CHECK(parse_decimal("0042", 100) == 42U);
    CHECK(parse_decimal("18446744073709551615", UINT64_MAX) == UINT64_MAX);
    CHECK_FALSE(parse_decimal("18446744073709551616", UINT64_MAX)); // 2^64
    CHECK_FALSE(parse_decimal("11", 10));
    for (const auto* bad : {"", "-1", "+1", " 1", "1 ", "1.5", "0x10", "1e3"}) {
        CHECK_FALSE(parse_decimal(bad, 1000));
    }
}

TEST_CASE("replace_path: a path where its name ends, every time") {
    std::string text = "at /srv/pkgs/default.nix:3, /srv/pkgs, /srv/pkgs2/x, /srv/pkgs-old, "
                       "/srv/pkgs_a, /srv/pkgs.nix, /srv/pkgs";
    replace_path(text, "/srv/pkgs", "<package set>");
    CHECK(text == "at <package set>/default.nix:3, <package set>, /srv/pkgs2/x, /srv/pkgs-old, "
                  "/srv/pkgs_a, <package set>.nix, <package set>");
    std::string again = "/a/b/a/b/c";
    replace_path(again, "/a/b", "/a/b/x"); // the replacement is not searched again
    CHECK(again == "/a/b/x/a/b/x/c");
}

TEST_SUITE_END();
