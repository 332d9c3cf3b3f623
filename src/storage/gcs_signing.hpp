// V4 signed URLs for Google Cloud Storage (GOOG4-RSA-SHA256,
// cloud.google.com/storage/docs/access-control/signing-urls-manually): the
// SigV4 canonical request (see sigv4.hpp) with an UNSIGNED-PAYLOAD, a
// "<date>/auto/storage/goog4_request" scope, and an RSA-SHA256 signature
// by the service account's key instead of an HMAC chain. Pure: the caller
// supplies the time.
#pragma once

#include "http/url.hpp"
#include "util/crypto.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <string>

namespace nixery {

struct GcsUrlToSign {
    std::string method = "GET";
    std::string scheme = "https";
    std::string host = "storage.googleapis.com"; // sent as the signed host header
    std::string path;                            // not encoded: "/bucket/object"
    QueryParams query;                           // extra parameters, not encoded
    QueryParams headers;                         // extra headers the client will send
    std::string client_email;                    // the service account
    std::string timestamp;                       // "20190201T090000Z"
    std::int64_t expires_seconds = 300;          // at most 604800
};

// The complete signed URL.
Result<std::string> gcs_signed_url(const GcsUrlToSign& url, const RsaPrivateKey& key);

} // namespace nixery
