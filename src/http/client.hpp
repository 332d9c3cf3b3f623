// An HTTP client over libcurl for the object stores: one request, one
// response, with headers, a body from memory or streamed from a file
// range, and timeouts on every call so a dead endpoint is an error, never a
// hang. Thread-safe: each call borrows an idle easy handle from a pool (so
// connections are reused) and no handle is ever used by two threads at
// once. Create a client after fork(), in the process that uses it.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nixery {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A body read from `fd` at [offset, offset + length) with pread, so the
// same range can be sent again on a retry (or rewound when curl resends it
// on a fresh connection) and the file is never loaded.
struct FileRange {
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    HttpHeaders headers;
    std::string body;              // sent when `file` is empty
    std::optional<FileRange> file; // streamed body
    // The whole exchange; zero: no limit. A transfer that stalls (under
    // 1 KiB/s for 30 s, waiting for the answer included) fails anyway, so a
    // large upload may go without a total and still never hang.
    std::chrono::milliseconds timeout{30000};
    std::size_t max_response = 64 << 20;
    // When set, the body of a 2xx response goes to it piece by piece, never
    // into `body` (so max_response does not apply); returning false stops
    // the transfer, an error. Other responses' bodies are kept in `body`
    // for their error messages.
    std::function<bool(std::string_view)> on_data;
    // Follows up to 10 redirects, to http and https only, without the
    // credentials of the URL to another host. Only for public downloads: a
    // signed storage request must never be sent on to where a redirect says.
    bool follow_redirects = false;
};

struct HttpResponse {
    long status = 0;
    HttpHeaders headers; // names in lowercase
    std::string body;

    // The first value of a header, or "" when absent.
    std::string header(std::string_view lowercase_name) const;
};

class HttpClient {
public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Any HTTP status is a response; an error means no response arrived
    // (refused, timed out, reset). Its message is the cause alone, e.g.
    // "Connection refused"; the caller names the operation and object.
    Result<HttpResponse> perform(const HttpRequest& request);

private:
    void* borrow();
    void give_back(void* handle);

    std::mutex m_mutex;
    std::vector<void*> m_idle;
};

// "HTTP 403: <message>" with the message the store put in its body, for
// error texts. `body` may be JSON, XML or text; it is shortened.
std::string describe_status(const HttpResponse& response, std::string_view detail);

} // namespace nixery
