#include "http/validator.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("http");

TEST_CASE("content_validator") {
    HttpResponse r;
    r.status = 200;
    CHECK(content_validator(r).empty()); // nothing to compare: fetch again

    r.headers = {{"last-modified", "Mon, 07 Dec 2026 12:00:00 GMT"}, {"content-length", "41"}};
    const auto dated = content_validator(r);
    CHECK(dated == "last-modified Mon, 07 Dec 2026 12:00:00 GMT, length 41");
    r.headers[1].second = "42"; // changed within the same second
    CHECK(content_validator(r) != dated);

    // An ETag says it all, weak or strong.
    r.headers.emplace_back("etag", "W/\"4c23\"");
    CHECK(content_validator(r) == "etag W/\"4c23\"");
    r.headers.back().second = "W/\"4c24\"";
    CHECK(content_validator(r) == "etag W/\"4c24\"");
}

TEST_SUITE_END();
