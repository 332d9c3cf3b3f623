#include "http/client.hpp"

#include "util/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <curl/curl.h>
#include <unistd.h>

namespace nixery {

namespace {

constexpr auto k_connect_timeout = std::chrono::seconds(5);
constexpr long k_low_speed_bytes = 1024;
constexpr long k_low_speed_seconds = 30;
constexpr std::size_t k_idle_handles = 16;

struct Exchange {
    const HttpRequest* request = nullptr;
    CURL* handle = nullptr;
    HttpResponse response;
    std::uint64_t sent = 0;
    bool too_big = false;
    bool read_failed = false;
    bool sink_failed = false;
};

// The callbacks below never throw: they run inside libcurl.
size_t on_header(char* data, size_t size, size_t n, void* user) noexcept {
    auto* x = static_cast<Exchange*>(user);
    const std::string_view line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        x->response.headers.clear(); // a new response (after 100 Continue)
        return size * n;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        try {
            x->response.headers.emplace_back(ascii_lowercase(trim_blanks(line.substr(0, colon))),
                                             std::string(trim_blanks(line.substr(colon + 1))));
        } catch (...) {
            return 0;
        }
    }
    return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) noexcept {
    auto* x = static_cast<Exchange*>(user);
    const auto bytes = size * n;
    if (x->request->on_data) {
        long status = 0;
        curl_easy_getinfo(x->handle, CURLINFO_RESPONSE_CODE, &status);
        if (status / 100 == 2) {
            bool taken = false;
            try {
                taken = x->request->on_data(std::string_view(data, bytes));
            } catch (...) {
            }
            if (!taken) {
                x->sink_failed = true;
                return 0;
            }
            return bytes;
        }
    }
    if (x->response.body.size() + bytes > x->request->max_response) {
        x->too_big = true;
        return 0;
    }
    try {
        x->response.body.append(data, bytes);
    } catch (...) {
        return 0;
    }
    return bytes;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) noexcept {
    auto* x = static_cast<Exchange*>(user);
    const auto& req = *x->request;
    const auto want = size * n;
    if (req.file) {
        const auto left = req.file->length - x->sent;
        const auto count = static_cast<size_t>(std::min<std::uint64_t>(left, want));
        if (count == 0) {
            return 0;
        }
        ssize_t got;
        do {
            got = ::pread(req.file->fd, buffer, count,
                          static_cast<off_t>(req.file->offset + x->sent));
        } while (got < 0 && errno == EINTR);
        if (got <= 0) {
            x->read_failed = true; // a short file is as bad as an error
            return CURL_READFUNC_ABORT;
        }
        x->sent += static_cast<std::uint64_t>(got);
        return static_cast<size_t>(got);
    }
    const auto left = req.body.size() - x->sent;
    const auto count = std::min<std::size_t>(left, want);
    std::copy_n(req.body.data() + x->sent, count, buffer);
    x->sent += count;
    return count;
}

// curl rewinds the body when it sends the request again by itself: a
// reused connection the server had closed, found dead only after the body
// went out. Without this, that ends in "necessary data rewind wasn't
// possible" instead of a second try on a fresh connection.
int on_seek(void* user, curl_off_t offset, int origin) noexcept {
    auto* x = static_cast<Exchange*>(user);
    const auto& req = *x->request;
    const std::uint64_t length = req.file ? req.file->length : req.body.size();
    if (origin != SEEK_SET || offset < 0 || static_cast<std::uint64_t>(offset) > length) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    x->sent = static_cast<std::uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
}

} // namespace

std::string HttpResponse::header(std::string_view lowercase_name) const {
    for (const auto& [k, v] : headers) {
        if (k == lowercase_name) {
            return v;
        }
    }
    return {};
}

HttpClient::HttpClient() {
    // Thread-safe since curl 7.84; called here, before any request thread.
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

HttpClient::~HttpClient() {
    for (auto* h : m_idle) {
        curl_easy_cleanup(static_cast<CURL*>(h));
    }
}

void* HttpClient::borrow() {
    {
        std::lock_guard lock(m_mutex);
        if (!m_idle.empty()) {
            auto* h = m_idle.back();
            m_idle.pop_back();
            return h;
        }
    }
    return curl_easy_init();
}

void HttpClient::give_back(void* handle) {
    std::lock_guard lock(m_mutex);
    if (m_idle.size() < k_idle_handles) {
        m_idle.push_back(handle);
    } else {
        curl_easy_cleanup(static_cast<CURL*>(handle));
    }
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request) {
    auto* curl = static_cast<CURL*>(borrow());
    if (curl == nullptr) {
        return fail("curl_easy_init failed");
    }
    struct Return {
        HttpClient* client;
        CURL* handle;
        curl_slist* headers = nullptr;
        ~Return() {
            curl_slist_free_all(headers);
            curl_easy_reset(handle); // keeps its connections for the next request
            client->give_back(handle);
        }
    } back{this, curl};

    Exchange x;
    x.request = &request;
    x.handle = curl;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (request.follow_redirects) {
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    // Send the path as the caller wrote (and signed) it: curl would
    // otherwise squash "/./" and "/../" in object keys.
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::chrono::milliseconds(k_connect_timeout).count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, k_low_speed_bytes);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, k_low_speed_seconds);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);

    const bool has_body = request.file || !request.body.empty() || request.method == "PUT" ||
                          request.method == "POST";
    if (request.method == "HEAD") {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        // UPLOAD streams through on_read with a known Content-Length; the
        // custom method turns its PUT into POST where needed.
        const auto length = request.file ? request.file->length : request.body.size();
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &x);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, &x);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(length));
        if (request.method != "PUT") {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        }
        back.headers = curl_slist_append(back.headers, "Expect:");
    } else if (request.method != "GET") {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    for (const auto& [name, value] : request.headers) {
        back.headers = curl_slist_append(back.headers, (name + ": " + value).c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, back.headers);

    const auto rc = curl_easy_perform(curl);
    if (x.too_big) {
        return fail("response larger than " + std::to_string(request.max_response) + " bytes");
    }
    if (x.sink_failed) {
        return fail("taking the response body failed");
    }
    if (x.read_failed) {
        return fail("reading the upload body failed");
    }
    if (rc != CURLE_OK) {
        return fail(errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x.response.status);
    return std::move(x.response);
}

std::string describe_status(const HttpResponse& response, std::string_view detail) {
    std::string out = "HTTP " + std::to_string(response.status);
    std::string text(detail);
    if (text.size() > 300) {
        text = text.substr(0, 300) + "…";
    }
    if (!text.empty()) {
        out += ": " + text;
    }
    return out;
}

} // namespace nixery
