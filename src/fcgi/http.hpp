// A request as the worker sees it (the FastCGI params nginx sends) and the
// response it writes back. Plain values: handlers are testable without a
// socket.
#pragma once

#include "util/log.hpp"

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nixery {

struct Request {
    std::string method;
    std::string path;  // decoded, without the query string (nginx's $document_uri)
    std::string query; // raw query string
    std::string host;  // the Host header, for pages that show pull commands
    // Every param nginx sent, in order; a repeated header (several Accept
    // lines) arrives as several params of the same name.
    std::vector<std::pair<std::string, std::string>> params;

    // All values of HTTP header `name` ("Accept"), in order.
    std::vector<std::string> header_values(std::string_view name) const;
    // The value of query parameter `name`, or empty.
    std::string query_param(std::string_view name) const;
};

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    log::Fields log_fields; // added to the request's log line
    // The route's label in the request metrics ("manifest", "blob"…), which
    // the handler knows and the transport does not; static storage.
    std::string_view route;

    Response& header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

std::string_view status_text(int status);

// True when a header line "name: value" cannot be split or cut by what it
// holds: no CR, LF or NUL anywhere, and no ':' in the name.
bool is_safe_header(std::string_view name, std::string_view value);

// The bytes of a FastCGI (CGI-style) response. A header that is not safe
// (is_safe_header) turns the whole response into a 500 error. For HEAD the body is left out
// but Content-Length still describes it, as for GET.
std::string serialize_response(const Response& response, bool head);

} // namespace nixery
