#include "storage/xml.hpp"

#include <cstdint>
#include <cstdlib>

namespace nixery::xml {

std::vector<std::string_view> elements(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> out;
    const std::string open = "<" + std::string(tag);
    const std::string close = "</" + std::string(tag) + ">";
    std::size_t pos = 0;
    for (;;) {
        const auto start = xml.find(open, pos);
        if (start == std::string_view::npos) {
            return out;
        }
        const auto after = start + open.size();
        if (after >= xml.size()) {
            return out;
        }
        const char next = xml[after];
        if (next != '>' && next != ' ' && next != '/' && next != '\t' && next != '\n') {
            pos = after; // a longer tag name, such as <KeyCount> for <Key>
            continue;
        }
        const auto end_of_open = xml.find('>', after);
        if (end_of_open == std::string_view::npos) {
            return out;
        }
        if (xml[end_of_open - 1] == '/') {
            out.emplace_back();
            pos = end_of_open + 1;
            continue;
        }
        const auto end = xml.find(close, end_of_open + 1);
        if (end == std::string_view::npos) {
            return out;
        }
        out.push_back(xml.substr(end_of_open + 1, end - end_of_open - 1));
        pos = end + close.size();
    }
}

std::string text(std::string_view xml, std::string_view tag) {
    const auto found = elements(xml, tag);
    return found.empty() ? std::string() : decode(found.front());
}

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | cp >> 6);
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | cp >> 12);
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | cp >> 18);
        out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace

std::string decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out += text[i];
            continue;
        }
        const auto semi = text.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            out += text[i];
            continue;
        }
        const auto entity = text.substr(i + 1, semi - i - 1);
        if (entity == "amp") {
            out += '&';
        } else if (entity == "lt") {
            out += '<';
        } else if (entity == "gt") {
            out += '>';
        } else if (entity == "quot") {
            out += '"';
        } else if (entity == "apos") {
            out += '\'';
        } else if (entity.size() > 1 && entity[0] == '#') {
            const bool hex = entity[1] == 'x' || entity[1] == 'X';
            const std::string digits(entity.substr(hex ? 2 : 1));
            append_utf8(out, static_cast<std::uint32_t>(
                                 std::strtoul(digits.c_str(), nullptr, hex ? 16 : 10)));
        } else {
            out += text[i];
            continue;
        }
        i = semi;
    }
    return out;
}

} // namespace nixery::xml
