#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

namespace nixery::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};

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
    w.Key("msg");
    w.String(msg.data(), msg.size());
    for (const auto& f : fields) {
        w.Key(f.key.c_str(), f.key.size());
        std::visit(
            [&w](const auto& v) {
                using V = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<V, std::string>) {
                    w.String(v.c_str(), v.size());
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

std::string redact_url(std::string_view url) {
    auto cut = url.find_first_of("?#");
    std::string out(url.substr(0, cut));
    const auto scheme = out.find("://");
    if (scheme != std::string::npos) {
        const auto host_start = scheme + 3;
        const auto at = out.find('@', host_start);
        const auto slash = out.find('/', host_start);
        if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
            out.erase(host_start, at + 1 - host_start);
        }
    }
    if (cut != std::string_view::npos) {
        out += "?<redacted>";
    }
    return out;
}

} // namespace nixery::log
