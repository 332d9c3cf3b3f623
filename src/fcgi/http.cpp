#include "fcgi/http.hpp"

namespace nixery {

namespace {

// "Accept" → "HTTP_ACCEPT", as CGI names header params.
std::string cgi_name(std::string_view header) {
    std::string out = "HTTP_";
    for (char c : header) {
        out += c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

} // namespace

std::string Request::param(std::string_view name) const {
    for (const auto& [n, value] : params) {
        if (n == name) {
            return value;
        }
    }
    return {};
}

std::vector<std::string> Request::header_values(std::string_view name) const {
    const auto key = cgi_name(name);
    std::vector<std::string> out;
    for (const auto& [k, v] : params) {
        if (k == key) {
            out.push_back(v);
        }
    }
    return out;
}

std::string Request::query_param(std::string_view name) const {
    std::string_view rest(query);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (url_decode(pair.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
        }
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    }
    return {};
}

std::string_view status_text(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

bool is_safe_header(std::string_view name, std::string_view value) {
    if (name.empty() || name.find_first_of(":\r\n", 0) != std::string_view::npos ||
        name.find('\0') != std::string_view::npos) {
        return false;
    }
    return value.find_first_of("\r\n") == std::string_view::npos &&
           value.find('\0') == std::string_view::npos;
}

std::string serialize_response(const Response& response, bool head) {
    for (const auto& [name, value] : response.headers) {
        if (!is_safe_header(name, value)) {
            // A value that would split the header block: nothing of this
            // response goes out, the client gets a server error instead.
            log::error("response header refused",
                       {{"header", name}, {"error", "the value holds CR, LF or NUL"}});
            Response refused;
            refused.status = 500;
            refused.header("Content-Type", "application/json");
            refused.body = R"({"errors":[{"code":"INTERNAL_ERROR","message":"the server built an )"
                           R"(invalid response","detail":{}}]})";
            return serialize_response(refused, head);
        }
    }
    std::string out = "Status: " + std::to_string(response.status) + " " +
                      std::string(status_text(response.status)) + "\r\n";
    bool has_length = false;
    for (const auto& [name, value] : response.headers) {
        out += name + ": " + value + "\r\n";
        has_length = has_length || name == "Content-Length";
    }
    if (!has_length) {
        out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    out += "\r\n";
    if (!head) {
        out += response.body;
    }
    return out;
}

} // namespace nixery
