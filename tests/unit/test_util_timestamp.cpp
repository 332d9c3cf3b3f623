#include "util/timestamp.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("util");

TEST_CASE("parse_http_date") {
    CHECK(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT") == 1440938160);
    CHECK_FALSE(parse_http_date("2015-08-30T12:36:00Z"));
    CHECK_FALSE(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT trailing"));
}

TEST_CASE("parse_rfc3339") {
    CHECK(parse_rfc3339("2015-08-30T12:36:00Z") == 1440938160);
    CHECK(parse_rfc3339("2015-08-30T12:36:00.123Z") == 1440938160);
    CHECK(parse_rfc3339("2015-08-30T14:36:00+02:00") == 1440938160);
    CHECK_FALSE(parse_rfc3339("yesterday"));
    CHECK_FALSE(parse_rfc3339("2015-08-30T12:36:00"));
}

TEST_CASE("within_ttl") {
    using std::chrono::seconds;
    CHECK(within_ttl(seconds(0), seconds(10)));
    CHECK(within_ttl(seconds(9), seconds(10)));
    CHECK_FALSE(within_ttl(seconds(10), seconds(10)));
    // Written "in the future": the clock stepped back since.
    CHECK_FALSE(within_ttl(seconds(-1), seconds(10)));
    CHECK_FALSE(within_ttl(std::chrono::milliseconds(-3600000), seconds(10)));
}

TEST_SUITE_END();
