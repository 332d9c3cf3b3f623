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

TEST_SUITE_END();
