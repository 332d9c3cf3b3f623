#include "storage/gcs_auth.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;
using testutil::load_json;

TEST_SUITE_BEGIN("storage");

TEST_CASE("jwt_assertion") {
    testutil::TempDir dir;
    const auto account_json = load_json("gcs_v4_service_account.json");
    // The published key, with a token_uri of our own.
    std::string text = testutil::slurp(testutil::data_file("gcs_v4_service_account.json"));
    testutil::write_file(dir / "key.json", text);
    const auto account = load_service_account(dir / "key.json");
    REQUIRE_MESSAGE(account, account.error().message);
    CHECK(account->client_email == account_json["client_email"].GetString());
    const auto jwt = jwt_assertion(*account, 1549011600);
    REQUIRE(jwt);
    const auto first = jwt->find('.');
    const auto second = jwt->find('.', first + 1);
    REQUIRE(second != std::string::npos);
    // {"alg":"RS256","typ":"JWT","kid":"ffff…"} and the claims, base64url.
    CHECK(jwt->substr(0, first) ==
          base64url_encode(
              R"({"alg":"RS256","typ":"JWT","kid":"ffffffffffffffffffffffffffffffffffffffff"})"));
    CHECK(jwt->substr(first + 1, second - first - 1) ==
          base64url_encode(
              R"({"iss":"test-iam-credentials@dummy-project-id.iam.gserviceaccount.com",)"
              R"("scope":"https://www.googleapis.com/auth/devstorage.read_write",)"
              R"("aud":"https://oauth2.googleapis.com/token","iat":1549011590,"exp":1549015190})"));
    CHECK(jwt->find_first_of("+/=") == std::string::npos);

    testutil::write_file(dir / "user.json", R"({"type":"authorized_user"})");
    const auto user = load_service_account(dir / "user.json");
    REQUIRE_FALSE(user);
    CHECK(user.error().message.find("not a service_account key") != std::string::npos);
}

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

TEST_SUITE_END();
