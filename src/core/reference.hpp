// The grammar of the distribution spec for repository names, tags and
// digests
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests). Every
// name, tag and digest is checked here before it reaches a path, a SQL statement, Nix or a command
// line. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nixery {

inline constexpr std::size_t k_max_name_length = 255;

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
bool is_valid_repository_name(std::string_view name);

// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool is_valid_tag(std::string_view tag);

// A digest the registry can hold is "sha256:" and 64 lowercase hex digits.
enum class DigestCheck {
    ok,          // a sha256 digest
    unsupported, // well-formed (algorithm:encoded) but not sha256
    malformed,   // not a digest at all
};

DigestCheck check_digest(std::string_view text);

// "name[:tag]" as a command line gives an image: the tag follows a colon
// after the last slash, "latest" when there is none. Neither part is
// checked (is_valid_repository_name, is_valid_tag).
struct NameAndTag {
    std::string name;
    std::string tag;
};
NameAndTag split_name_and_tag(std::string_view text);

// A manifest reference is a digest when it contains ':' (tags cannot).
inline bool looks_like_digest(std::string_view reference) {
    return reference.find(':') != std::string_view::npos;
}

} // namespace nixery
