// Timestamps: "2026-11-27 21:56:08" for people (UTC), and reading the ones
// object stores report modification times in:
// RFC 3339 ("2026-11-27T21:56:08.123Z") in listings and GCS metadata, the
// HTTP date ("Fri, 27 Nov 2026 21:56:08 GMT") in an S3 HEAD; and how long
// a wall-clock time kept on disk is trusted. Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nixery {

// "YYYY-MM-DD hh:mm:ss" in UTC, for logs and pages; "?" when out of range.
std::string format_utc(std::int64_t unix_seconds);

// Unix seconds (fractions dropped); nullopt when `text` is not RFC 3339.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

// Unix seconds; nullopt when `text` is not an IMF-fixdate (RFC 9110 5.6.7).
std::optional<std::int64_t> parse_http_date(std::string_view text);

// Whether something the wall clock says was written `age` ago is still
// within `ttl`. A negative age means the clock stepped back since (NTP
// correcting a clock that was ahead): not trusted, else it would be for as
// long as the step, across restarts.
template <class Age, class Ttl> constexpr bool within_ttl(Age age, Ttl ttl) {
    return age >= Age::zero() && age < ttl;
}

} // namespace nixery
