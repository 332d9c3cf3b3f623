// Fetching a whole URL into memory with libcurl (http, https and file): the
// popularity data at start-up, a channel's list of store paths for
// popcount. One easy handle per call: not for requests.
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
