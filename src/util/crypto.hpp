// Keyed hashes, RSA signatures and base64 over OpenSSL, for request signing
// (SigV4, GCS V4 signed URLs, OAuth2 JWTs). Pure computation: no I/O, no
// clock. A parsed key is immutable and may be shared by threads.
#pragma once

#include "util/result.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_pkey_st;

namespace nixery {

// HMAC-SHA256 of `data` under `key` (raw bytes in, raw bytes out).
std::string hmac_sha256(std::string_view key, std::string_view data);

// Standard base64 with padding (RFC 4648 section 4).
std::string base64_encode(std::string_view data);
// URL-safe base64 without padding (RFC 4648 section 5), as JWTs use it.
std::string base64url_encode(std::string_view data);

// An RSA private key, for RS256 / RSA-SHA256 signatures.
class RsaPrivateKey {
public:
    // Parses a PEM "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE KEY" block. The
    // error names `what` (e.g. the credentials file) but never the key.
    static Result<RsaPrivateKey> from_pem(std::string_view pem, std::string_view what);

    // RSASSA-PKCS1-v1_5 with SHA-256 over `data`: the raw signature bytes.
    Result<std::string> sign_sha256(std::string_view data) const;

private:
    explicit RsaPrivateKey(std::shared_ptr<evp_pkey_st> key) : m_key(std::move(key)) {}
    std::shared_ptr<evp_pkey_st> m_key;
};

} // namespace nixery
