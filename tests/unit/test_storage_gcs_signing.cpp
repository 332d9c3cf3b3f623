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
using testutil::load_json;

namespace {

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

TEST_SUITE_BEGIN("storage");

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

TEST_SUITE_END();
