#include "storage/gcs_auth.hpp"

#include "http/retry.hpp"
#include "http/url.hpp"
#include "storage/token_cache.hpp"
#include "util/files.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

#include <chrono>
#include <ctime>
#include <rapidjson/document.h>

namespace nixery {

namespace {

// A token fetch gets half of a storage call's budget: the call that waits
// for it (token_cache.hpp) still has time for its own request.
const RetryPolicy k_token_policy{.budget = k_default_retry_budget / 2};

} // namespace

Result<FetchedToken> parse_token_response(const HttpResponse& r, const std::string& where) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str(), r.body.size());
    const bool json = !d.HasParseError() && d.IsObject();
    if (r.status != 200) {
        std::string why;
        if (json && d.HasMember("error") && d["error"].IsString()) {
            why = d["error"].GetString();
            if (d.HasMember("error_description") && d["error_description"].IsString()) {
                why += std::string(": ") + d["error_description"].GetString();
            }
        }
        return fail("get an access token from " + where + " failed: " + describe_status(r, why));
    }
    if (!json || !d.HasMember("access_token") || !d["access_token"].IsString() ||
        !d.HasMember("expires_in") || !d["expires_in"].IsNumber()) {
        return fail("get an access token from " + where +
                    " failed: the answer has no access_token and expires_in");
    }
    // A lifetime beyond a year is not one (and would overflow a cast).
    const double expires_in = d["expires_in"].GetDouble();
    if (!(expires_in >= 0 && expires_in <= 366.0 * 86400)) {
        return fail("get an access token from " + where +
                    " failed: the answer's expires_in is out of range");
    }
    return FetchedToken{d["access_token"].GetString(),
                        std::chrono::seconds(static_cast<std::int64_t>(expires_in))};
}

namespace {

// What both sources share: the cache, in front of their fetch().
class CachedTokens : public AccessTokens {
public:
    CachedTokens() : m_cache([this] { return fetch(); }) {}

    Result<std::string> token() final { return m_cache.token(); }
    void invalidate(std::string_view refused) final { m_cache.invalidate(refused); }

protected:
    virtual Result<FetchedToken> fetch() = 0;

private:
    TokenCache m_cache;
};

class ServiceAccountTokens final : public CachedTokens {
public:
    ServiceAccountTokens(ServiceAccount account, HttpClient& http)
        : m_account(std::move(account)), m_http(http) {}

private:
    Result<FetchedToken> fetch() override {
        const auto where = "\"" + log::redact_url(m_account.token_uri) + "\"";
        auto response = perform_with_retries(
            m_http,
            [&]() -> Result<HttpRequest> {
                TRY_ASSIGN(const auto assertion,
                           jwt_assertion(m_account, static_cast<std::int64_t>(std::time(nullptr))));
                HttpRequest r;
                r.method = "POST";
                r.url = m_account.token_uri;
                r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
                r.body =
                    query_string({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                                  {"assertion", assertion}});
                return r;
            },
            k_token_policy);
        if (!response) {
            return fail("get an access token from " + where +
                        " failed: " + response.error().message);
        }
        return parse_token_response(*response, where);
    }

    ServiceAccount m_account;
    HttpClient& m_http;
};

class MetadataServerTokens final : public CachedTokens {
public:
    MetadataServerTokens(std::string host, HttpClient& http)
        : m_url("http://" + host + "/computeMetadata/v1/instance/service-accounts/default/token"),
          m_http(http) {}

private:
    Result<FetchedToken> fetch() override {
        const auto where = "the metadata server \"" + m_url + "\"";
        auto response = perform_with_retries(
            m_http,
            [&]() -> Result<HttpRequest> {
                HttpRequest r;
                r.url = m_url;
                r.headers = {{"Metadata-Flavor", "Google"}};
                r.timeout = std::chrono::seconds(10);
                return r;
            },
            k_token_policy);
        if (!response) {
            return fail("get an access token from " + where +
                        " failed: " + response.error().message +
                        " (outside Google Cloud, set GOOGLE_APPLICATION_CREDENTIALS)");
        }
        return parse_token_response(*response, where);
    }

    std::string m_url;
    HttpClient& m_http;
};

} // namespace

Result<ServiceAccount> load_service_account(const std::filesystem::path& file) {
    const auto what = "GOOGLE_APPLICATION_CREDENTIALS \"" + file.string() + "\"";
    TRY_ASSIGN(const auto text, read_file(file));
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
    if (d.HasParseError() || !d.IsObject()) {
        return fail("read " + what + " failed: not a JSON object");
    }
    const auto field = [&](const char* name) -> std::string {
        return d.HasMember(name) && d[name].IsString() ? d[name].GetString() : std::string();
    };
    if (field("type") != "service_account") {
        return fail("read " + what + " failed: its type is \"" + field("type") +
                    "\", not a service_account key");
    }
    for (const char* name : {"client_email", "private_key", "token_uri"}) {
        if (field(name).empty()) {
            return fail("read " + what + " failed: it has no " + name);
        }
    }
    TRY_ASSIGN(auto key, RsaPrivateKey::from_pem(field("private_key"), what));
    return ServiceAccount{field("client_email"), field("token_uri"), field("private_key_id"),
                          std::move(key)};
}

Result<std::string> jwt_assertion(const ServiceAccount& account, std::int64_t now) {
    // Issued 10 s ago, as Google's own client libraries do: a clock a little
    // ahead of Google's would otherwise get no token at all.
    const auto issued = now - 10;
    const auto header =
        json_object({{"alg", "RS256"}, {"typ", "JWT"}, {"kid", account.private_key_id}}, {});
    const auto claims = json_object({{"iss", account.client_email},
                                     {"scope", std::string(k_gcs_scope)},
                                     {"aud", account.token_uri}},
                                    {{"iat", issued}, {"exp", issued + 3600}});
    const auto signing_input = base64url_encode(header) + "." + base64url_encode(claims);
    TRY_ASSIGN(const auto signature, account.key.sign_sha256(signing_input));
    return signing_input + "." + base64url_encode(signature);
}

std::unique_ptr<AccessTokens> service_account_tokens(ServiceAccount account, HttpClient& http) {
    return std::make_unique<ServiceAccountTokens>(std::move(account), http);
}

std::unique_ptr<AccessTokens> metadata_server_tokens(std::string host, HttpClient& http) {
    return std::make_unique<MetadataServerTokens>(std::move(host), http);
}

} // namespace nixery
