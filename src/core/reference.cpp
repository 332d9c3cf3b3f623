#include "core/reference.hpp"

namespace nixery {

namespace {

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// One path component: alnum runs joined by ".", "_", "__" or one or more "-".
bool is_valid_component(std::string_view c) {
    if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) {
        return false;
    }
    std::size_t i = 0;
    while (i < c.size()) {
        if (is_lower_alnum(c[i])) {
            ++i;
            continue;
        }
        // a separator: must be followed by an alnum (the back is alnum, so it is)
        if (c[i] == '.') {
            ++i;
        } else if (c[i] == '_') {
            i += (i + 1 < c.size() && c[i + 1] == '_') ? 2 : 1;
        } else if (c[i] == '-') {
            while (i < c.size() && c[i] == '-') {
                ++i;
            }
        } else {
            return false;
        }
        if (i >= c.size() || !is_lower_alnum(c[i])) {
            return false;
        }
    }
    return true;
}

} // namespace

bool is_valid_repository_name(std::string_view name) {
    if (name.empty() || name.size() > k_max_name_length) {
        return false;
    }
    std::size_t start = 0;
    for (;;) {
        const auto slash = name.find('/', start);
        if (!is_valid_component(name.substr(start, slash - start))) {
            return false;
        }
        if (slash == std::string_view::npos) {
            return true;
        }
        start = slash + 1;
    }
}

bool is_valid_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 128) {
        return false;
    }
    if (!is_alnum(tag[0]) && tag[0] != '_') {
        return false;
    }
    for (char c : tag.substr(1)) {
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-') {
            return false;
        }
    }
    return true;
}

DigestCheck check_digest(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
        return DigestCheck::malformed;
    }
    const auto algorithm = text.substr(0, colon);
    const auto encoded = text.substr(colon + 1);
    // algorithm: [a-z0-9]+([+._-][a-z0-9]+)*
    bool after_separator = true;
    for (char c : algorithm) {
        if (is_lower_alnum(c)) {
            after_separator = false;
        } else if ((c == '+' || c == '.' || c == '_' || c == '-') && !after_separator) {
            after_separator = true;
        } else {
            return DigestCheck::malformed;
        }
    }
    if (after_separator) {
        return DigestCheck::malformed;
    }
    // encoded: [a-zA-Z0-9=_-]+
    for (char c : encoded) {
        if (!is_alnum(c) && c != '=' && c != '_' && c != '-') {
            return DigestCheck::malformed;
        }
    }
    if (algorithm != "sha256") {
        return DigestCheck::unsupported;
    }
    if (encoded.size() != 64) {
        return DigestCheck::malformed;
    }
    for (char c : encoded) {
        if (!is_hex(c)) {
            return DigestCheck::malformed;
        }
    }
    return DigestCheck::ok;
}

NameAndTag split_name_and_tag(std::string_view text) {
    const auto slash = text.rfind('/');
    const auto colon = text.find(':', slash == std::string_view::npos ? 0 : slash);
    if (colon == std::string_view::npos) {
        return {std::string(text), "latest"};
    }
    return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

} // namespace nixery
