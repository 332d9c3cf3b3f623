// Pieces of URLs for the object-store clients: RFC 3986 percent-encoding,
// query strings, and the parts of an endpoint URL. Pure: no I/O.
#pragma once

#include "util/result.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nixery {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

enum class Slashes { encode, keep };

// Percent-encodes every byte except RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~), and '/' when `slashes` is keep; hex digits are
// uppercase, as SigV4 and GCS V4 signing require.
std::string uri_encode(std::string_view text, Slashes slashes = Slashes::encode);

// "k1=v1&k2=v2" with both sides encoded, in the given order.
std::string query_string(const QueryParams& params);

// An endpoint such as "https://s3.example.com:9000/prefix".
struct EndpointUrl {
    std::string scheme;    // "http" or "https"
    std::string authority; // host[:port]
    std::string path;      // "" or "/prefix" without a trailing slash

    std::string host() const; // authority without the port
    std::string base() const { return scheme + "://" + authority + path; }
};

// Parses an http(s) endpoint; `setting` names the variable in errors.
Result<EndpointUrl> parse_endpoint(std::string_view url, std::string_view setting);

} // namespace nixery
