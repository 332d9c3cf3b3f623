#include "storage/sigv4.hpp"

#include "util/crypto.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <algorithm>

namespace nixery::sigv4 {

namespace {

constexpr std::string_view k_algorithm = "AWS4-HMAC-SHA256";

} // namespace

std::string Scope::credential_scope() const {
    return date() + "/" + region + "/" + service + "/" + terminator;
}

std::string timestamp(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string canonical_uri(std::string_view path) {
    return path.empty() ? "/" : uri_encode(path, Slashes::keep);
}

std::string canonical_query(const QueryParams& query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [k, v] : query) {
        encoded.emplace_back(uri_encode(k), uri_encode(v));
    }
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [k, v] : encoded) {
        out += (out.empty() ? "" : "&") + k + "=" + v;
    }
    return out;
}

std::string canonical_header_value(std::string_view value) {
    std::string out;
    bool space = false;
    for (const char c : value) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = !out.empty();
            continue;
        }
        if (space) {
            out += ' ';
            space = false;
        }
        out += c;
    }
    return out;
}

CanonicalHeaders canonical_headers(const QueryParams& headers) {
    std::vector<std::pair<std::string, std::string>> sorted;
    for (const auto& [name, value] : headers) {
        sorted.emplace_back(ascii_lowercase(name), canonical_header_value(value));
    }
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    CanonicalHeaders out;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        // Repeated names become one line with comma-separated values.
        if (i > 0 && sorted[i].first == sorted[i - 1].first) {
            out.lines.pop_back();
            out.lines += "," + sorted[i].second + "\n";
            continue;
        }
        out.lines += sorted[i].first + ":" + sorted[i].second + "\n";
        out.signed_names += (out.signed_names.empty() ? "" : ";") + sorted[i].first;
    }
    return out;
}

std::string canonical_request(const Request& request) {
    const auto headers = canonical_headers(request.headers);
    return request.method + "\n" + canonical_uri(request.path) + "\n" +
           canonical_query(request.query) + "\n" + headers.lines + "\n" + headers.signed_names +
           "\n" + request.payload_hash;
}

std::string string_to_sign(std::string_view algorithm, const Scope& scope,
                           std::string_view canonical_request) {
    return std::string(algorithm) + "\n" + scope.timestamp + "\n" + scope.credential_scope() +
           "\n" + sha256_hex(canonical_request);
}

std::string signature(std::string_view secret_access_key, const Scope& scope,
                      std::string_view string_to_sign) {
    auto key = hmac_sha256("AWS4" + std::string(secret_access_key), scope.date());
    key = hmac_sha256(key, scope.region);
    key = hmac_sha256(key, scope.service);
    key = hmac_sha256(key, "aws4_request");
    return to_hex(hmac_sha256(key, string_to_sign));
}

std::string authorization(const Request& request, const Credentials& credentials,
                          const Scope& scope) {
    const auto sts = string_to_sign(k_algorithm, scope, canonical_request(request));
    return std::string(k_algorithm) + " Credential=" + credentials.access_key_id + "/" +
           scope.credential_scope() +
           ", SignedHeaders=" + canonical_headers(request.headers).signed_names +
           ", Signature=" + signature(credentials.secret_access_key, scope, sts);
}

QueryParams sign(Request request, const Credentials& credentials, const Scope& scope) {
    request.headers.emplace_back("x-amz-date", scope.timestamp);
    request.headers.emplace_back("x-amz-content-sha256", request.payload_hash);
    if (!credentials.session_token.empty()) {
        request.headers.emplace_back("x-amz-security-token", credentials.session_token);
    }
    auto headers = request.headers;
    if (!credentials.access_key_id.empty()) {
        headers.emplace_back("authorization", authorization(request, credentials, scope));
    }
    return headers;
}

std::string presigned_query(Request request, const Credentials& credentials, const Scope& scope,
                            std::int64_t expires_seconds) {
    request.query.emplace_back("X-Amz-Algorithm", std::string(k_algorithm));
    request.query.emplace_back("X-Amz-Credential",
                               credentials.access_key_id + "/" + scope.credential_scope());
    request.query.emplace_back("X-Amz-Date", scope.timestamp);
    request.query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
    if (!credentials.session_token.empty()) {
        // S3 wants the token signed along with the rest of the query.
        request.query.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
    request.query.emplace_back("X-Amz-SignedHeaders",
                               canonical_headers(request.headers).signed_names);
    request.payload_hash = std::string(k_unsigned_payload);
    const auto sts = string_to_sign(k_algorithm, scope, canonical_request(request));
    return canonical_query(request.query) +
           "&X-Amz-Signature=" + signature(credentials.secret_access_key, scope, sts);
}

} // namespace nixery::sigv4
