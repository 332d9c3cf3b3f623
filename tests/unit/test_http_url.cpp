#include "http/url.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("http");

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
    const auto v6 = parse_endpoint("http://[::1]:9000", "S3_ENDPOINT");
    REQUIRE(v6);
    CHECK(v6->host() == "[::1]");
    CHECK_FALSE(parse_endpoint("https://user:pw@x", "S3_ENDPOINT"));
}

TEST_SUITE_END();
