#include "util/log.hpp"

#include "util/text.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>
#include <utility>

namespace nixery::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
thread_local std::string t_request_id;

const char* level_name(Level level) {
    switch (level) {
    case Level::debug:
        return "debug";
    case Level::info:
        return "info";
    case Level::warn:
        return "warn";
    case Level::error:
        return "error";
    }
    return "info";
}

std::string timestamp() {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto secs = system_clock::to_time_t(now);
    const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03lldZ", static_cast<long long>(millis));
    return buf;
}

} // namespace

void set_level(Level level) {
    g_level.store(static_cast<int>(level));
}

bool parse_level(std::string_view word, Level& out) {
    for (auto l : {Level::debug, Level::info, Level::warn, Level::error}) {
        if (word == level_name(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

void write(Level level, std::string_view msg, const Fields& fields) {
    if (static_cast<int>(level) < g_level.load()) {
        return;
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("time");
    const auto ts = timestamp();
    w.String(ts.c_str(), ts.size());
    w.Key("level");
    w.String(level_name(level));
    w.Key("pid");
    w.Int64(getpid());
    // Text from clients (a decoded path) and from Nix may be any bytes; a
    // line that is not UTF-8 is not JSON, and log shippers drop it.
    w.Key("msg");
    const auto shown = valid_utf8(strip_userinfo(msg));
    w.String(shown.c_str(), shown.size());
    if (!t_request_id.empty()) {
        w.Key("request_id");
        w.String(t_request_id.c_str(), t_request_id.size());
    }
    for (const auto& f : fields) {
        w.Key(f.key.c_str(), f.key.size());
        std::visit(
            [&w](const auto& v) {
                using V = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<V, std::string>) {
                    const auto text = valid_utf8(strip_userinfo(v));
                    w.String(text.c_str(), text.size());
                } else if constexpr (std::is_same_v<V, std::int64_t>) {
                    w.Int64(v);
                } else if constexpr (std::is_same_v<V, double>) {
                    w.Double(v);
                } else {
                    w.Bool(v);
                }
            },
            f.value);
    }
    w.EndObject();
    std::string line(buf.GetString(), buf.GetSize());
    line += '\n';
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        const auto n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) {
            return; // nowhere left to report it
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

namespace {

// The user info of a scheme://userinfo@host… URL: its position and length
// (without the '@'); npos when there is none.
std::pair<std::size_t, std::size_t> userinfo(std::string_view url) {
    const auto scheme = url.find("://");
    if (scheme == std::string_view::npos) {
        return {std::string_view::npos, 0};
    }
    const auto start = scheme + 3;
    const auto end = url.find_first_of("/?#", start);
    const auto at = url.substr(0, end).rfind('@');
    if (at == std::string_view::npos || at < start) {
        return {std::string_view::npos, 0};
    }
    return {start, at - start};
}

} // namespace

std::string without_userinfo(std::string_view url) {
    const auto [start, length] = userinfo(url);
    std::string out(url);
    if (start != std::string_view::npos) {
        out.erase(start, length + 1);
    }
    return out;
}

std::string scrub_userinfo(std::string text, std::string_view url) {
    const auto [start, length] = userinfo(url);
    if (start == std::string_view::npos || length == 0) {
        return text;
    }
    const auto secret = std::string(url.substr(start, length));
    for (const auto& [from, to] :
         {std::pair{secret + "@", std::string()}, std::pair{secret, std::string("<redacted>")}}) {
        for (auto pos = text.find(from); pos != std::string::npos;
             pos = text.find(from, pos + to.size())) {
            text.replace(pos, from.size(), to);
        }
    }
    return text;
}

RequestScope::RequestScope(std::string id) {
    t_request_id = std::move(id);
}

RequestScope::~RequestScope() {
    t_request_id.clear();
}

const std::string& request_id() {
    return t_request_id;
}

std::string new_request_id() {
    thread_local std::mt19937_64 engine{std::random_device{}() ^
                                        (static_cast<std::uint64_t>(getpid()) << 32)};
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(engine()));
    return buf;
}

std::string strip_userinfo(std::string_view text) {
    std::string out;
    std::size_t done = 0;
    for (auto scheme = text.find("://"); scheme != std::string_view::npos;
         scheme = text.find("://", scheme + 3)) {
        // The authority ends where a path, query, fragment, quote or space
        // begins; its user info is everything up to the last '@' in it.
        const auto start = scheme + 3;
        auto end = text.find_first_of("/?#'\"` \t\r\n<>", start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const auto at = text.substr(start, end - start).rfind('@');
        if (at == std::string_view::npos) {
            continue;
        }
        out.append(text.substr(done, start - done));
        done = start + at + 1;
    }
    if (done == 0) {
        return std::string(text);
    }
    out.append(text.substr(done));
    return out;
}

std::string redact_url(std::string_view url) {
    const auto cut = url.find_first_of("?#");
    auto out = without_userinfo(url.substr(0, cut));
    if (cut != std::string_view::npos) {
        out += "?<redacted>";
    }
    return out;
}

} // namespace nixery::log
