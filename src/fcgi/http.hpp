// A request as the worker sees it (the FastCGI params nginx sends) and the
// response it writes back. Plain values: handlers are testable without a
// socket.
#pragma once

#include "util/log.hpp"

#include <functional>
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
    // The value of FastCGI param `name` that nginx set (not a header: those
    // are HTTP_*), or empty.
    std::string param(std::string_view name) const;
};

class ResponseWriter;

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    log::Fields log_fields; // added to the request's log line
    // The level of the request's log line: an error when the answer is a
    // failure the operator must act on, logged nowhere else.
    log::Level log_level = log::Level::info;
    // The route's label in the request metrics ("manifest", "blob"…), which
    // the handler knows and the transport does not; static storage.
    std::string_view route;
    // The body goes to nginx for a HEAD too: nginx caches the response
    // (X-Accel-Expires) for GET and HEAD alike, and leaves the body out of
    // a HEAD's answer itself.
    bool body_for_head = false;
    // False for a hand-over to another nginx location that asks the pool
    // again (X-Accel-Redirect to @manifest_build): not an answer to the
    // client, so not counted in the request metrics.
    bool counted = true;
    // Set when the answer needs a long wait (for a build): the worker hands
    // the request's connection to a thread of its own and runs this there,
    // and the thread that accepted it goes back to accepting, so waits never
    // hold up requests that need no build. Everything else is then ignored.
    std::function<void(ResponseWriter&)> later;

    Response& header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

// How a Response::later answers, on its own thread.
class ResponseWriter {
public:
    virtual ~ResponseWriter() = default;
    // Whether the client has gone (nginx closed the connection when it hung
    // up), or the worker is draining.
    virtual bool client_gone() = 0;
    virtual bool stopping() = 0;
    // Whether the request is a HEAD (no body is sent).
    virtual bool head_only() const = 0;
    // A whole response, as a handler returns one. Ends the response.
    virtual void send(Response response) = 0;
    // The status line and headers now, through nginx to the client, and the
    // body later (send_body): without Content-Length, and unbuffered by
    // nginx. For HEAD this ends the response.
    virtual void start(int status, std::vector<std::pair<std::string, std::string>> headers) = 0;
    // The body after start(). Ends the response.
    virtual void send_body(std::string_view body) = 0;
    // Ends a started response broken: the connection closes without the
    // response's end, so the client sees a failed transfer, never a
    // truncated body taken for a whole one.
    virtual void abort() = 0;
    // Added to the request's log line, and its level (see Response).
    log::Fields log_fields;
    log::Level log_level = log::Level::info;
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
