// OAuth2 access tokens for Google Cloud Storage, as Google's client
// libraries get them: with a service-account key (GOOGLE_APPLICATION_
// CREDENTIALS), a JWT signed RS256 and exchanged at the key's token_uri
// (developers.google.com/identity/protocols/oauth2/service-account);
// without one, from the GCE metadata server. Tokens are cached until
// shortly before they expire (token_cache.hpp): token() is thread-safe, one
// thread refreshes while the others wait for its result, and a failed
// refresh is remembered for a few seconds.
#pragma once

#include "http/client.hpp"
#include "storage/token_cache.hpp"
#include "util/crypto.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace nixery {

inline constexpr std::string_view k_gcs_scope =
    "https://www.googleapis.com/auth/devstorage.read_write";

struct ServiceAccount {
    std::string client_email;
    std::string token_uri;
    std::string private_key_id;
    RsaPrivateKey key;
};

// Reads a service-account JSON key. Errors name the file, never the key.
Result<ServiceAccount> load_service_account(const std::filesystem::path& file);

// The signed JWT that asks `account.token_uri` for a token valid an hour
// from `now` (Unix seconds). Pure apart from the signature.
Result<std::string> jwt_assertion(const ServiceAccount& account, std::int64_t now);

// The token endpoint's answer ({"access_token": "...", "expires_in": 3599,
// "token_type": "Bearer"}) as a token, or an error naming `where` and the
// endpoint's own reason for a refusal. Pure.
Result<FetchedToken> parse_token_response(const HttpResponse& r, const std::string& where);

class AccessTokens {
public:
    virtual ~AccessTokens() = default;
    // A bearer token valid for a while yet; errors say where it was asked.
    virtual Result<std::string> token() = 0;
    // The store refused `refused`: the next token() fetches anew (unless
    // another thread has already replaced it).
    virtual void invalidate(std::string_view refused) = 0;
};

std::unique_ptr<AccessTokens> service_account_tokens(ServiceAccount account, HttpClient& http);
// `host` is host[:port] of the metadata server (GCE_METADATA_HOST).
std::unique_ptr<AccessTokens> metadata_server_tokens(std::string host, HttpClient& http);

} // namespace nixery
