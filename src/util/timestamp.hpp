// Reading RFC 3339 timestamps ("2026-11-27T21:56:08.123Z"), as object stores
// report modification times. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace nixery {

// Unix seconds (fractions dropped); nullopt when `text` is not RFC 3339.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

} // namespace nixery
