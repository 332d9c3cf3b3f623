#include "storage/gcs_auth.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_CASE("parse_token_response") {
    HttpResponse r;
    r.status = 200;
    SUBCASE("a token and its lifetime") {
        r.body = R"({"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"})";
        auto t = parse_token_response(r, "the metadata server");
        REQUIRE(t);
        CHECK(t->value == "ya29.a");
        CHECK(t->lifetime == std::chrono::seconds(3599));
    }
    SUBCASE("a lifetime out of range is refused, not cast") {
        for (const auto* body : {R"({"access_token":"t","expires_in":1e300})",
                                 R"({"access_token":"t","expires_in":-5})"}) {
            r.body = body;
            auto t = parse_token_response(r, "the metadata server");
            REQUIRE_FALSE(t);
            CHECK(t.error().message.find("out of range") != std::string::npos);
        }
    }
    SUBCASE("a refusal names the endpoint's reason") {
        r.status = 400;
        r.body = R"({"error":"invalid_grant","error_description":"expired"})";
        auto t = parse_token_response(r, "the token endpoint");
        REQUIRE_FALSE(t);
        CHECK(t.error().message.find("invalid_grant: expired") != std::string::npos);
    }
}
