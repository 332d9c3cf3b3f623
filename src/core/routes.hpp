// The registry's URL space and its error documents. Routing is a pure
// function of the request path; errors follow the distribution spec's shape
// {"errors":[{"code","message","detail"}]} with its codes
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes).
// Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

namespace nixery {

enum class RouteKind {
    base,            // /v2/
    manifest,        // /v2/<name>/manifests/<reference>
    blob,            // /v2/<name>/blobs/<digest>
    tags,            // /v2/<name>/tags/list
    start_page,      // /
    metrics,         // /metrics
    unsupported_api, // another /v2/ endpoint (uploads, catalog, referrers…)
    not_found,       // outside the API
};

struct Route {
    RouteKind kind = RouteKind::not_found;
    std::string name;      // repository name, unvalidated
    std::string reference; // tag or digest, unvalidated
};

// `path` is the decoded request path without the query string.
Route parse_route(std::string_view path);

// The label a route has in the request metrics (nixery_http_requests_total)
// and on the response the handler gives the transport: "manifest", "blob"…
std::string_view route_label(RouteKind route);

struct RegistryError {
    int status = 500;
    std::string code;    // e.g. "MANIFEST_UNKNOWN"
    std::string message; // what went wrong and what to do about it
    std::string detail;  // JSON value (object or string); empty for none
};

RegistryError name_invalid(std::string_view name);
RegistryError tag_invalid(std::string_view tag);
RegistryError digest_invalid(std::string_view digest);
RegistryError blob_unknown(std::string_view digest);
RegistryError manifest_unknown(std::string message, std::string detail = {});
RegistryError unsupported(std::string message, int status = 405);
RegistryError internal_error(std::string message);

std::string error_json(const RegistryError& error);

// `text` as a JSON string value.
std::string json_string(std::string_view text);

} // namespace nixery
