#include "http/url.hpp"

namespace nixery {

namespace {

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

} // namespace

std::string uri_encode(std::string_view text, Slashes slashes) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (unreserved(c) || (c == '/' && slashes == Slashes::keep)) {
            out += ch;
        } else {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 15];
        }
    }
    return out;
}

std::string query_string(const QueryParams& params) {
    std::string out;
    for (const auto& [key, value] : params) {
        if (!out.empty()) {
            out += '&';
        }
        out += uri_encode(key) + "=" + uri_encode(value);
    }
    return out;
}

std::string EndpointUrl::host() const {
    if (!authority.empty() && authority.front() == '[') {
        return authority.substr(0, authority.find(']') + 1);
    }
    return authority.substr(0, authority.rfind(':'));
}

Result<EndpointUrl> parse_endpoint(std::string_view url, std::string_view setting) {
    const auto bad = [&](const std::string& why) {
        return fail(std::string(setting) + "=\"" + std::string(url) + "\" " + why);
    };
    EndpointUrl out;
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) {
        return bad("is not a URL: it needs http:// or https://");
    }
    out.scheme = std::string(url.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https") {
        return bad("is not an http:// or https:// URL");
    }
    auto rest = url.substr(sep + 3);
    const auto slash = rest.find('/');
    out.authority = std::string(rest.substr(0, slash));
    if (out.authority.empty() || out.authority.find_first_of("@?#") != std::string::npos) {
        return bad("has no host, or has user info, a query or a fragment");
    }
    if (slash != std::string_view::npos) {
        out.path = std::string(rest.substr(slash));
        if (out.path.find_first_of("?#") != std::string::npos) {
            return bad("has a query or a fragment");
        }
        while (!out.path.empty() && out.path.back() == '/') {
            out.path.pop_back();
        }
    }
    return out;
}

} // namespace nixery
