#include "http/fetch.hpp"

#include "util/log.hpp"

#include <curl/curl.h>
#include <memory>

namespace nixery {

namespace {

struct Sink {
    std::string data;
    std::size_t max = 0;
    bool too_big = false;
    bool out_of_memory = false;
};

// libcurl's write callback: no exception may cross it (C code between).
size_t on_data(char* ptr, size_t size, size_t n, void* user) noexcept {
    auto* sink = static_cast<Sink*>(user);
    const auto bytes = size * n;
    if (sink->data.size() + bytes > sink->max) {
        sink->too_big = true;
        return 0; // aborts the transfer
    }
    try {
        sink->data.append(ptr, bytes);
    } catch (...) {
        sink->out_of_memory = true;
        return 0;
    }
    return bytes;
}

} // namespace

Result<std::string> fetch_url(const std::string& url, std::chrono::seconds timeout,
                              std::size_t max_bytes) {
    const auto shown = log::redact_url(url);
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) {
        return fail("fetch \"" + shown + "\" failed: curl_easy_init");
    }
    Sink sink;
    sink.max = max_bytes;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
    const auto rc = curl_easy_perform(curl.get());
    if (sink.too_big) {
        return fail("fetch \"" + shown + "\" failed: larger than " + std::to_string(max_bytes) +
                    " bytes");
    }
    if (sink.out_of_memory) {
        return fail("fetch \"" + shown + "\" failed: out of memory");
    }
    if (rc != CURLE_OK) {
        return fail("fetch \"" + shown +
                    "\" failed: " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    if (url.rfind("file:", 0) != 0 && (status < 200 || status > 299)) {
        return fail("fetch \"" + shown + "\" failed: HTTP status " + std::to_string(status));
    }
    return std::move(sink.data);
}

} // namespace nixery
