// SigV4 against AWS's published vectors (tests/unit/data/sigv4_vectors.json
// says where each comes from).
#include "storage/sigv4.hpp"
#include "testutil.hpp"
#include "util/sha256.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

namespace {

rapidjson::Document load_vectors() {
    const auto text = testutil::slurp(testutil::data_file("sigv4_vectors.json"));
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

QueryParams pairs(const rapidjson::Value& list) {
    QueryParams out;
    for (const auto& p : list.GetArray()) {
        out.emplace_back(p[0].GetString(), p[1].GetString());
    }
    return out;
}

void check_group(const rapidjson::Value& group) {
    const sigv4::Credentials creds{group["access_key_id"].GetString(),
                                   group["secret_access_key"].GetString(), ""};
    const sigv4::Scope scope{group["date"].GetString(), group["region"].GetString(),
                             group["service"].GetString()};
    for (const auto& c : group["cases"].GetArray()) {
        const std::string name = c["name"].GetString();
        sigv4::Request request;
        request.method = c["method"].GetString();
        request.path = c["path"].GetString();
        request.query = pairs(c["query"]);
        request.headers = pairs(c["headers"]);
        request.payload_hash = c.HasMember("payload_hash") ? c["payload_hash"].GetString()
                                                           : sha256_hex(c["body"].GetString());
        const auto creq = sigv4::canonical_request(request);
        if (c.HasMember("creq")) {
            CHECK_MESSAGE(creq == c["creq"].GetString(), name);
        }
        if (c.HasMember("sts")) {
            CHECK_MESSAGE(sigv4::string_to_sign("AWS4-HMAC-SHA256", scope, creq) ==
                              c["sts"].GetString(),
                          name);
        }
        CHECK_MESSAGE(sigv4::authorization(request, creds, scope) == c["authz"].GetString(), name);
    }
}

} // namespace

TEST_SUITE_BEGIN("storage");

TEST_CASE("sigv4::authorization") {
    const auto d = load_vectors();
    SUBCASE("the AWS SigV4 test suite") {
        check_group(d["suite"]);
    }
    SUBCASE("the S3 header-based examples") {
        check_group(d["s3"]);
    }
}

TEST_CASE("sigv4::sign") {
    // "GET Object (Range)" of the S3 examples, built the way the backend
    // builds a request: x-amz-date and x-amz-content-sha256 come from sign().
    const auto d = load_vectors();
    const auto& s3 = d["s3"];
    const auto& c = s3["cases"][0];
    REQUIRE(std::string(c["name"].GetString()) == "GET Object (Range)");
    const sigv4::Credentials creds{s3["access_key_id"].GetString(),
                                   s3["secret_access_key"].GetString(), ""};
    const sigv4::Scope scope{s3["date"].GetString(), s3["region"].GetString(), "s3"};
    sigv4::Request request;
    request.method = "GET";
    request.path = c["path"].GetString();
    request.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
    request.payload_hash = c["payload_hash"].GetString();
    const auto headers = sigv4::sign(request, creds, scope);
    const auto value = [&](const std::string& name) {
        for (const auto& [k, v] : headers) {
            if (k == name) {
                return v;
            }
        }
        return std::string("(absent)");
    };
    // The date header is the scope's own time: one clock reading for both.
    CHECK(value("x-amz-date") == scope.timestamp);
    CHECK(value("x-amz-content-sha256") == c["payload_hash"].GetString());
    CHECK(value("authorization") == c["authz"].GetString());
    CHECK(value("x-amz-security-token") == "(absent)");

    SUBCASE("temporary credentials sign their token; no key, no signature") {
        auto with_token = creds;
        with_token.session_token = "token";
        const auto signed_with_token = sigv4::sign(request, with_token, scope);
        CHECK(std::find(signed_with_token.begin(), signed_with_token.end(),
                        std::pair<std::string, std::string>("x-amz-security-token", "token")) !=
              signed_with_token.end());
        const auto anonymous = sigv4::sign(request, {}, scope);
        CHECK(std::none_of(anonymous.begin(), anonymous.end(),
                           [](const auto& h) { return h.first == "authorization"; }));
    }
}

TEST_CASE("sigv4::presigned_query") {
    const auto d = load_vectors();
    const auto& s3 = d["s3"];
    const auto& p = s3["presign"];
    const sigv4::Credentials creds{s3["access_key_id"].GetString(),
                                   s3["secret_access_key"].GetString(), ""};
    const sigv4::Scope scope{s3["date"].GetString(), s3["region"].GetString(), "s3"};
    sigv4::Request request;
    request.method = p["method"].GetString();
    request.path = p["path"].GetString();
    request.headers = {{"host", p["host"].GetString()}};
    const auto query = sigv4::presigned_query(request, creds, scope, p["expires"].GetInt64());
    CHECK(std::string("https://") + p["host"].GetString() + p["path"].GetString() + "?" + query ==
          p["url"].GetString());

    SUBCASE("a session token is part of the signed query") {
        auto with_token = creds;
        with_token.session_token = "token/with+chars";
        const auto q = sigv4::presigned_query(request, with_token, scope, 300);
        CHECK(q.find("X-Amz-Security-Token=token%2Fwith%2Bchars&") != std::string::npos);
        CHECK(q.find("X-Amz-Signature=") != std::string::npos);
        CHECK(q != query);
    }
}

TEST_CASE("sigv4 canonical pieces") {
    CHECK(sigv4::canonical_header_value("  a \t b  ") == "a b");
    CHECK(sigv4::canonical_uri("/layers/ab cd") == "/layers/ab%20cd");
    CHECK(sigv4::canonical_uri("") == "/");
    CHECK(sigv4::canonical_query({{"b", "2"}, {"a", "x y"}, {"a", "1"}}) == "a=1&a=x%20y&b=2");
    CHECK(sigv4::timestamp(1440938160) == "20150830T123600Z");
}

TEST_SUITE_END();
