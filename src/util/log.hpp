// Structured logging: one JSON object per line on stderr (journald keeps it),
// with time, level, pid, msg and the caller's fields. Each line is written
// with a single write(2) so lines from threads and processes never interleave.
// Callers redact secrets before logging (see redact_url); as a last guard,
// the user info of every scheme://user:secret@host URL in a line is removed.
// While a request is served, its id (RequestScope) is in every line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nixery::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

using Value = std::variant<std::string, std::int64_t, double, bool>;

struct Field {
    std::string key;
    Value value;
    Field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
    Field(std::string k, std::string_view v) : key(std::move(k)), value(std::string(v)) {}
    Field(std::string k, const char* v) : key(std::move(k)), value(std::string(v)) {}
    Field(std::string k, std::int64_t v) : key(std::move(k)), value(v) {}
    Field(std::string k, int v) : key(std::move(k)), value(std::int64_t{v}) {}
    Field(std::string k, unsigned v) : key(std::move(k)), value(std::int64_t{v}) {}
    Field(std::string k, long long v) : key(std::move(k)), value(std::int64_t(v)) {}
    Field(std::string k, unsigned long v) : key(std::move(k)), value(std::int64_t(v)) {}
    Field(std::string k, unsigned long long v) : key(std::move(k)), value(std::int64_t(v)) {}
    Field(std::string k, double v) : key(std::move(k)), value(v) {}
    Field(std::string k, bool v) : key(std::move(k)), value(v) {}
};

using Fields = std::vector<Field>;

// Lines below `level` are dropped. Set once at start-up from the config.
void set_level(Level level);
// Parses "debug", "info", "warn", "error"; false when the word is unknown.
bool parse_level(std::string_view word, Level& out);

void write(Level level, std::string_view msg, const Fields& fields = {});
inline void debug(std::string_view msg, const Fields& f = {}) {
    write(Level::debug, msg, f);
}
inline void info(std::string_view msg, const Fields& f = {}) {
    write(Level::info, msg, f);
}
inline void warn(std::string_view msg, const Fields& f = {}) {
    write(Level::warn, msg, f);
}
inline void error(std::string_view msg, const Fields& f = {}) {
    write(Level::error, msg, f);
}

// The id of the request the calling thread serves, for the duration of the
// scope: every line written meanwhile carries it as "request_id", and
// errors sent to the client quote it, so an operator finds the full text.
class RequestScope {
public:
    explicit RequestScope(std::string id);
    ~RequestScope();
    RequestScope(const RequestScope&) = delete;
    RequestScope& operator=(const RequestScope&) = delete;
};

// The current request's id; empty outside a RequestScope.
const std::string& request_id();

// A fresh request id: 16 random lowercase hex digits.
std::string new_request_id();

// `text` with the user info of every scheme://userinfo@host URL in it
// removed ("cloning https://u:pw@host/r failed" → "cloning https://host/r
// failed"), wherever it appears in free text.
std::string strip_userinfo(std::string_view text);

// A URL without its query string and user info: signed URLs carry their
// credentials there.
std::string redact_url(std::string_view url);

// A URL without its user info ("https://user:token@host/path" →
// "https://host/path") but with its path and query: a repository URL as
// people may see it. Anything that is not scheme://… is returned as it is
// (an scp-like "git@host:path" names a user, no secret).
std::string without_userinfo(std::string_view url);

// `text` (a message of git or Nix about `url`) with the user info of `url`
// removed wherever it appears.
std::string scrub_userinfo(std::string text, std::string_view url);

} // namespace nixery::log
