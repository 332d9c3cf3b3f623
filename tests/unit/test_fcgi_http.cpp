#include "fcgi/http.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("fcgi");

TEST_CASE("serialize_response") {
    Response r;
    r.body = "{}";
    r.header("Content-Type", "application/json");
    SUBCASE("a header line per header, the length of the body") {
        const auto out = serialize_response(r, false);
        CHECK(out == "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     "2\r\n\r\n{}");
    }
    SUBCASE("a value with CR, LF or NUL turns the response into a server error") {
        for (const auto& bad :
             {std::string("x\r\nSet-Cookie: a=b"), std::string("x\ny"), std::string("x\0y", 3)}) {
            Response evil = r;
            evil.header("Location", bad);
            const auto out = serialize_response(evil, false);
            CHECK(out.rfind("Status: 500 ", 0) == 0);
            CHECK(out.find("Set-Cookie") == std::string::npos);
            CHECK(out.find("Location") == std::string::npos);
        }
        Response bad_name = r;
        bad_name.header("X-A: b\r\nX-C", "d");
        CHECK(serialize_response(bad_name, false).rfind("Status: 500 ", 0) == 0);
    }
}

TEST_CASE("Request::query_param") {
    Request r;
    r.query = "n=2&last=v1%2E&x&a%41=b+c&tail=a%41";
    CHECK(r.query_param("n") == "2");
    CHECK(r.query_param("last") == "v1.");
    CHECK(r.query_param("tail") == "aA"); // an escape at the very end
    CHECK(r.query_param("aA") == "b c");
    CHECK(r.query_param("x").empty());
    CHECK(r.query_param("missing").empty());
    r.query = "last=%4";
    CHECK(r.query_param("last") == "%4"); // not an escape
}

TEST_CASE("is_safe_header") {
    CHECK(is_safe_header("Docker-Content-Digest", "sha256:ab"));
    CHECK_FALSE(is_safe_header("A", "b\r"));
    CHECK_FALSE(is_safe_header("A", std::string_view("b\0", 2)));
    CHECK_FALSE(is_safe_header("A:B", "c"));
    CHECK_FALSE(is_safe_header("", "c"));
}

TEST_SUITE_END();
