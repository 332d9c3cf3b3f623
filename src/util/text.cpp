#include "util/text.hpp"

#include <cctype>
#include <charconv>

namespace nixery {

namespace {

// The length of the valid UTF-8 sequence at the start of `s`, or 0.
std::size_t sequence_length(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto lead = byte(0);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    unsigned char low = 0x80; // bounds of the second byte (overlongs, surrogates, > U+10FFFF)
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s.size() < length || byte(1) < low || byte(1) > high) {
        return 0;
    }
    for (std::size_t i = 2; i < length; ++i) {
        if (byte(i) < 0x80 || byte(i) > 0xBF) {
            return 0;
        }
    }
    return length;
}

} // namespace

std::string valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const auto length = sequence_length(text);
        if (length == 0) {
            out += "\xEF\xBF\xBD"; // U+FFFD
            text.remove_prefix(1);
        } else {
            out.append(text.substr(0, length));
            text.remove_prefix(length);
        }
    }
    return out;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > max) {
        return std::nullopt; // too large for 64 bits, or for `max`
    }
    return value;
}

void replace_path(std::string& text, std::string_view path, std::string_view with) {
    if (path.empty()) {
        return;
    }
    const auto name_goes_on = [&](std::size_t end) {
        if (end >= text.size()) {
            return false;
        }
        const auto c = static_cast<unsigned char>(text[end]);
        return std::isalnum(c) != 0 || c == '_' || c == '-';
    };
    for (auto pos = text.find(path); pos != std::string::npos;) {
        if (name_goes_on(pos + path.size())) {
            pos = text.find(path, pos + 1);
            continue;
        }
        text.replace(pos, path.size(), with);
        pos = text.find(path, pos + with.size());
    }
}

} // namespace nixery
