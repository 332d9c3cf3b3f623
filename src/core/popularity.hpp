// Popularity data: how many packages depend on a package, keyed by the store
// path name without its hash ("glibc-2.40-66"). Unknown names count 1; the
// certificates and iana-etc, which every image gets, count as the most
// popular of all (../shared/LAYERING.md). Pure: no I/O.
#pragma once

#include "util/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nixery {

class Popularity {
public:
    Popularity() = default;
    // Parses {"name-version": count, …}. An empty document is not an error.
    static Result<Popularity> parse(std::string_view json);

    std::uint64_t of_store_path(std::string_view path) const;
    // Identifies the data, so a layering computed with other data is not reused.
    const std::string& digest() const { return m_digest; }
    std::size_t size() const { return m_counts.size(); }

private:
    std::unordered_map<std::string, std::uint64_t> m_counts;
    std::uint64_t m_max = 0;
    std::string m_digest = "none";
};

} // namespace nixery
