// AWS Signature Version 4 (docs.aws.amazon.com/IAM/latest/UserGuide/
// reference_sigv-create-signed-request.html), for S3 requests and presigned
// URLs. Pure: the caller supplies the time and the request; nothing here
// reads a clock, a file or the network. The canonical request is shared
// with GCS V4 signing, which is the same construction signed with RSA.
//
//   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n PAYLOAD
//   string to sign    = ALGORITHM \n TIMESTAMP \n SCOPE \n hex(sha256(creq))
//   signing key       = HMAC chain "AWS4"+secret → date → region → service
//                       → "aws4_request"
#pragma once

#include "http/url.hpp"

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace nixery::sigv4 {

// What SigV4 puts in x-amz-content-sha256 for a body it does not hash.
inline constexpr std::string_view k_unsigned_payload = "UNSIGNED-PAYLOAD";

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token; // empty unless temporary credentials
};

struct Request {
    std::string method;
    std::string path;         // not encoded: "/bucket/key" (S3 keys are never normalized)
    QueryParams query;        // not encoded
    QueryParams headers;      // the headers to sign; must include host
    std::string payload_hash; // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
};

struct Scope {
    std::string timestamp; // "20150830T123600Z" (ISO 8601 basic, UTC)
    std::string region;
    std::string service;
    std::string terminator = "aws4_request"; // GCS's V4 signing: "goog4_request"

    std::string date() const { return timestamp.substr(0, 8); }
    // "20150830/us-east-1/service/aws4_request"
    std::string credential_scope() const;
};

// "20150830T123600Z" for a Unix time.
std::string timestamp(std::time_t t);

// Each path segment percent-encoded once; slashes kept.
std::string canonical_uri(std::string_view path);
// Sorted by encoded name, then encoded value; "k=v" joined by '&'.
std::string canonical_query(const QueryParams& query);
// Leading and trailing whitespace removed, inner runs collapsed to one space.
std::string canonical_header_value(std::string_view value);
// "name:value\n" lines sorted by lowercase name, and "a;b;c" of those names.
struct CanonicalHeaders {
    std::string lines;
    std::string signed_names;
};
CanonicalHeaders canonical_headers(const QueryParams& headers);

std::string canonical_request(const Request& request);
std::string string_to_sign(std::string_view algorithm, const Scope& scope,
                           std::string_view canonical_request);
// Hex HMAC-SHA256 of the string to sign under the derived signing key.
std::string signature(std::string_view secret_access_key, const Scope& scope,
                      std::string_view string_to_sign);

// The Authorization header value for `request`.
std::string authorization(const Request& request, const Credentials& credentials,
                          const Scope& scope);

// Signs `request` (its headers: host and what else the caller sends) at
// scope.timestamp: returns its headers with x-amz-date (that same time:
// one clock reading makes both, or the store recomputes another
// signature), x-amz-content-sha256, the session token if any and, when
// there is an access key, authorization. Ready to send.
QueryParams sign(Request request, const Credentials& credentials, const Scope& scope);

// Presigns `request` (its headers normally only host): returns its query
// with the X-Amz-* parameters and X-Amz-Signature, ready to append after '?'.
std::string presigned_query(Request request, const Credentials& credentials, const Scope& scope,
                            std::int64_t expires_seconds);

} // namespace nixery::sigv4
