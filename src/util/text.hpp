// Small text helpers: splitting without copying (views into the input),
// ASCII case, hex digits, whole numbers, valid UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nixery {

// The non-empty pieces of `text` between `separator`s.
inline std::vector<std::string_view> split_nonempty(std::string_view text, char separator = '\n') {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const auto at = text.find(separator);
        if (at != 0) {
            out.push_back(text.substr(0, at));
        }
        text = at == std::string_view::npos ? std::string_view() : text.substr(at + 1);
    }
    return out;
}

// `text` without the spaces, tabs and line ends around it.
inline std::string_view trim_blanks(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// `text` with ASCII A-Z as a-z, whatever the locale (header and host names).
inline std::string ascii_lowercase(std::string_view text) {
    std::string out(text);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// True when `text` is exactly `digits` lowercase hex digits (a SHA-256 in
// hex is 64, a git commit 40).
inline bool is_lower_hex(std::string_view text, std::size_t digits) {
    return text.size() == digits &&
           text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// The cause at the end of an error message in the house shape ("write
// \"/var/x\" failed: No space left on device" → "No space left on device"),
// when it names no path, URL, quoted object or SQL: what a client may be told
// about a fault of the server. Empty when there is no such cause.
inline std::string public_cause(std::string_view message) {
    const auto at = message.rfind("failed: ");
    if (at == std::string_view::npos) {
        return {};
    }
    const auto cause = message.substr(at + 8);
    if (cause.empty() || cause.size() > 80 ||
        cause.find_first_of("/\\\"'`@:;=\n") != std::string_view::npos) {
        return {};
    }
    return std::string(cause);
}

// `text` as valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), each byte that starts no valid sequence replaced
// by U+FFFD: what JSON may carry of a request's path or a build's log.
std::string valid_utf8(std::string_view text);

// `text` as a whole number of at most `max`: decimal digits only (no sign,
// no blanks, not empty); nullopt for anything else, or a larger number.
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max);

// Every `path` in `text` becomes `with`, but only where the path's last
// name ends ("/root" in "/root/.ssh", not in "/build/rootfs"): how a server
// path is kept out of what clients read.
void replace_path(std::string& text, std::string_view path, std::string_view with);

} // namespace nixery
