#include "util/timestamp.hpp"

#include <cstdio>
#include <ctime>
#include <string>

namespace nixery {

std::string format_utc(std::int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
        return "?";
    }
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
    const std::string s(text);
    std::tm tm{};
    int used = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    std::int64_t t = timegm(&tm);
    std::size_t i = static_cast<std::size_t>(used);
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            ++i;
        }
    }
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int hours = 0;
        int minutes = 0;
        if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &hours, &minutes) != 2) {
            return std::nullopt;
        }
        const int offset = (hours * 60 + minutes) * 60;
        t += s[i] == '+' ? -offset : offset;
        i += 6;
    } else if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) {
        return std::nullopt;
    }
    return t;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) {
    const std::string s(text);
    std::tm tm{};
    const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') {
        return std::nullopt;
    }
    return static_cast<std::int64_t>(timegm(&tm));
}

} // namespace nixery
