#include "http/retry.hpp"
#include "http/url.hpp"
#include "util/timestamp.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_CASE("uri_encode") {
    CHECK(uri_encode("a b/c~d") == "a%20b%2Fc~d");
    CHECK(uri_encode("a b/c", Slashes::keep) == "a%20b/c");
    CHECK(uri_encode("\xc3\xa9") == "%C3%A9");
    CHECK(query_string({{"name", "layers/ab"}, {"x", ""}}) == "name=layers%2Fab&x=");
}

TEST_CASE("parse_endpoint") {
    auto e = parse_endpoint("http://127.0.0.1:9000/base/", "S3_ENDPOINT");
    REQUIRE(e);
    CHECK(e->scheme == "http");
    CHECK(e->authority == "127.0.0.1:9000");
    CHECK(e->host() == "127.0.0.1");
    CHECK(e->path == "/base");
    CHECK(e->base() == "http://127.0.0.1:9000/base");
    const auto bad = parse_endpoint("minio:9000", "S3_ENDPOINT");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("S3_ENDPOINT=\"minio:9000\"") == 0);
    CHECK_FALSE(parse_endpoint("ftp://x", "S3_ENDPOINT"));
    CHECK_FALSE(parse_endpoint("https://user:pw@x", "S3_ENDPOINT"));
}

TEST_CASE("backoff_delay") {
    const RetryPolicy p{5, std::chrono::milliseconds(100), std::chrono::milliseconds(1000)};
    CHECK(backoff_delay(p, 1, 1.0).count() == 100);
    CHECK(backoff_delay(p, 2, 1.0).count() == 200);
    CHECK(backoff_delay(p, 3, 0.0).count() == 200); // jitter: half of 400 at least
    CHECK(backoff_delay(p, 9, 1.0).count() == 1000);
    CHECK(is_retryable_status(503));
    CHECK(is_retryable_status(429));
    CHECK_FALSE(is_retryable_status(404));
}

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
