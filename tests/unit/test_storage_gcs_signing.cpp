// GCS V4 signed URLs against googleapis/conformance-tests
// (tests/unit/data/gcs_v4_signatures.json, signed with the dummy service
// account published beside it).
#include "storage/gcs_auth.hpp"
#include "storage/gcs_signing.hpp"
#include "testutil.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

namespace {

rapidjson::Document load_json(const std::string& name) {
    const auto text = testutil::slurp(testutil::data_file(name));
    rapidjson::Document d;
    d.Parse(text.c_str(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

// "2019-02-01T09:00:00Z" → "20190201T090000Z"
std::string basic_timestamp(std::string iso) {
    iso.erase(std::remove_if(iso.begin(), iso.end(), [](char c) { return c == '-' || c == ':'; }),
              iso.end());
    return iso;
}

// Some expected URLs spell the parameter x-goog-signature; the name is
// case-insensitive to Google, everything else must match exactly.
std::string signature_name_normalised(std::string url) {
    const auto at = url.find("x-goog-signature=");
    if (at != std::string::npos) {
        url.replace(at, 16, "X-Goog-Signature");
    }
    return url;
}

} // namespace

TEST_CASE("gcs_signed_url") {
    const auto account = load_json("gcs_v4_service_account.json");
    const auto key = RsaPrivateKey::from_pem(account["private_key"].GetString(), "the test key");
    REQUIRE_MESSAGE(key, key.error().message);
    const auto vectors = load_json("gcs_v4_signatures.json");
    int checked = 0;
    for (const auto& t : vectors["signingV4Tests"].GetArray()) {
        const std::string description = t["description"].GetString();
        GcsUrlToSign url;
        url.method = t["method"].GetString();
        url.scheme = t["scheme"].GetString();
        url.client_email = account["client_email"].GetString();
        url.timestamp = basic_timestamp(t["timestamp"].GetString());
        url.expires_seconds = std::stoll(t["expiration"].GetString());
        const std::string bucket = t["bucket"].GetString();
        const std::string object = t.HasMember("object") ? t["object"].GetString() : "";
        const std::string style =
            t.HasMember("urlStyle") ? t["urlStyle"].GetString() : "PATH_STYLE";
        if (style == "VIRTUAL_HOSTED_STYLE") {
            url.host = bucket + ".storage.googleapis.com";
            url.path = "/" + object;
        } else if (style == "BUCKET_BOUND_DOMAIN") {
            url.host = t["bucketBoundDomain"].GetString();
            url.path = "/" + object;
        } else {
            url.path = "/" + bucket + (object.empty() ? "" : "/" + object);
        }
        if (t.HasMember("headers")) {
            for (const auto& h : t["headers"].GetObject()) {
                url.headers.emplace_back(h.name.GetString(), h.value.GetString());
            }
        }
        if (t.HasMember("queryParameters")) {
            for (const auto& q : t["queryParameters"].GetObject()) {
                url.query.emplace_back(q.name.GetString(), q.value.GetString());
            }
        }
        const auto signed_url = gcs_signed_url(url, *key);
        REQUIRE_MESSAGE(signed_url, description);
        CHECK_MESSAGE(*signed_url == signature_name_normalised(t["expectedUrl"].GetString()),
                      description);
        ++checked;
    }
    CHECK(checked == 14);
}

TEST_CASE("RsaPrivateKey::from_pem") {
    const auto bad =
        RsaPrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nnot a key\n", "key.json");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("read private key of key.json failed") == 0);
}

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
              R"("aud":"https://oauth2.googleapis.com/token","iat":1549011600,"exp":1549015200})"));
    CHECK(jwt->find_first_of("+/=") == std::string::npos);

    testutil::write_file(dir / "user.json", R"({"type":"authorized_user"})");
    const auto user = load_service_account(dir / "user.json");
    REQUIRE_FALSE(user);
    CHECK(user.error().message.find("not a service_account key") != std::string::npos);
}
