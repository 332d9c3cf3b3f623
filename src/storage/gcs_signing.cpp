#include "storage/gcs_signing.hpp"

#include "storage/sigv4.hpp"
#include "util/sha256.hpp"

namespace nixery {

Result<std::string> gcs_signed_url(const GcsUrlToSign& url, const RsaPrivateKey& key) {
    constexpr std::string_view k_algorithm = "GOOG4-RSA-SHA256";
    const sigv4::Scope scope{url.timestamp, "auto", "storage", "goog4_request"};
    sigv4::Request request;
    request.method = url.method;
    request.path = url.path;
    request.headers = url.headers;
    request.headers.emplace_back("host", url.host);
    request.query = url.query;
    request.query.emplace_back("X-Goog-Algorithm", std::string(k_algorithm));
    request.query.emplace_back("X-Goog-Credential",
                               url.client_email + "/" + scope.credential_scope());
    request.query.emplace_back("X-Goog-Date", url.timestamp);
    request.query.emplace_back("X-Goog-Expires", std::to_string(url.expires_seconds));
    request.query.emplace_back("X-Goog-SignedHeaders",
                               sigv4::canonical_headers(request.headers).signed_names);
    request.payload_hash = std::string(sigv4::k_unsigned_payload);

    TRY_ASSIGN(const auto raw, key.sign_sha256(sigv4::string_to_sign(
                                   k_algorithm, scope, sigv4::canonical_request(request))));
    return url.scheme + "://" + url.host + sigv4::canonical_uri(url.path) + "?" +
           sigv4::canonical_query(request.query) + "&X-Goog-Signature=" + to_hex(raw);
}

} // namespace nixery
