// Fetching a URL with libcurl (http, https and file), for popularity data.
// One easy handle per call: this runs at start-up, not per request.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <string>

namespace nixery {

// The body of a successful (2xx, or any file://) response. Errors name the
// URL (without its query string) and the cause.
Result<std::string> fetch_url(const std::string& url, std::chrono::seconds timeout,
                              std::size_t max_bytes = 64 << 20);

} // namespace nixery
