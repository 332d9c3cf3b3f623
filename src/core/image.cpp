#include "core/image.hpp"

#include <algorithm>

namespace nixery {

std::string_view nix_system(Arch arch) {
    return arch == Arch::arm64 ? "aarch64-linux" : "x86_64-linux";
}

std::string_view oci_architecture(Arch arch) {
    return arch == Arch::arm64 ? "arm64" : "amd64";
}

namespace {

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const auto pos = text.find(separator, start);
        out.emplace_back(text.substr(start, pos - start));
        if (pos == std::string_view::npos) {
            return out;
        }
        start = pos + 1;
    }
}

} // namespace

Image parse_image_name(std::string_view name) {
    Image image;
    image.name = std::string(name);
    auto components = split(name, '/');
    std::size_t first = 0;
    bool shell = false;
    // Meta-packages are only meaningful at the front, in either order.
    while (first < components.size()) {
        if (components[first] == "arm64" && image.arch == Arch::amd64) {
            image.arch = Arch::arm64;
        } else if (components[first] == "shell" && !shell) {
            shell = true;
        } else {
            break;
        }
        ++first;
    }
    image.packages.assign(components.begin() + static_cast<std::ptrdiff_t>(first),
                          components.end());
    if (shell) {
        const auto& extra = shell_packages();
        image.packages.insert(image.packages.end(), extra.begin(), extra.end());
    }
    std::sort(image.packages.begin(), image.packages.end());
    image.packages.erase(std::unique(image.packages.begin(), image.packages.end()),
                         image.packages.end());
    return image;
}

std::vector<std::string> attribute_path(std::string_view package) {
    return split(package, '.');
}

} // namespace nixery
