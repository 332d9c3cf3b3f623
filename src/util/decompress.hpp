// Decompressing downloaded bytes with libarchive's own filters (xz, gzip,
// bzip2, zstd), as a stream in bounded pieces.
#pragma once

#include "util/result.hpp"

#include <cstddef>
#include <functional>
#include <string_view>

namespace nixery {

// Decompresses `body` (xz, gzip, bzip2 or zstd, known by its magic;
// anything else, an empty body too, passes unchanged) piece by piece into
// `on_piece`, at most `max` bytes in all. Only filters libarchive runs
// itself: some of the others would start an outside program on
// downloaded bytes.
Result<void> decompress_each(std::string_view body, std::size_t max,
                             const std::function<void(std::string_view)>& on_piece);

// The same, line by line (without their '\n'; a last line without one too).
Result<void> decompress_lines(std::string_view body, std::size_t max,
                              const std::function<void(std::string_view)>& on_line);

} // namespace nixery
