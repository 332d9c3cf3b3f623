// Splitting text into pieces without copying (views into the input).
#pragma once

#include <string_view>
#include <vector>

namespace nixery {

// The non-empty pieces of `text` between `separator`s.
inline std::vector<std::string_view> split_nonempty(std::string_view text, char separator = '\n') {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const auto at = text.find(separator);
        if (at != 0) {
            out.push_back(text.substr(0, at));
        }
        text = at == std::string_view::npos ? std::string_view() : text.substr(at + 1);
    }
    return out;
}

} // namespace nixery
