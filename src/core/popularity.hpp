// Popularity data: how many packages depend on a package, keyed by the store
// path name without its hash ("glibc-2.40-66"). Unknown names count 1; the
// certificates and iana-etc, which every image gets, count as the most
// popular of all (../shared/LAYERING.md).
//
// A name the data does not list falls back to its versionless form
// ("glibc-2.41-5" → "glibc", "openssl-3.0.13-bin" → "openssl-bin"), which
// counts as much as the most popular listed version of it: after a version
// bump, the new version of a library is as popular as the old one was until
// the data is counted again. Pure: no I/O.
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

    // The count of the store path's name, of its versionless name when the
    // name is not listed, and 1 when neither is.
    std::uint64_t of_store_path(std::string_view path) const;
    // Identifies the data, so a layering computed with other data is not reused.
    const std::string& digest() const { return m_digest; }
    std::size_t size() const { return m_counts.size(); }
    bool empty() const { return m_counts.empty(); }

private:
    std::unordered_map<std::string, std::uint64_t> m_counts;
    std::unordered_map<std::string, std::uint64_t> m_versionless;
    std::uint64_t m_max = 0;
    std::string m_digest = "none";
};

// A store path name without its version, as Nix's builtins.parseDrvName
// splits it (the version starts at the first '-' not followed by a letter),
// keeping an output suffix made of letters that ends the version:
// "glibc-2.40-66" → "glibc", "openssl-3.0.13-bin" → "openssl-bin",
// "python3.12-requests-2.31.0" → "python3.12-requests". A name without a
// version is returned unchanged.
std::string versionless_name(std::string_view name);

} // namespace nixery
