#include "core/platform.hpp"

#include "util/text.hpp"

#include <algorithm>

namespace nixery {

std::string_view oci_variant(Arch arch) {
    return arch == Arch::arm64 ? "v8" : "";
}

std::string platform_name(Arch arch) {
    std::string out = std::string(k_platform_os) + "/" + std::string(oci_architecture(arch));
    if (!oci_variant(arch).empty()) {
        out += "/" + std::string(oci_variant(arch));
    }
    return out;
}

Arch host_arch() {
#if defined(__aarch64__)
    return Arch::arm64;
#else
    return Arch::amd64;
#endif
}

bool parse_platform(std::string_view text, Arch& out) {
    for (const auto arch : {Arch::amd64, Arch::arm64}) {
        const auto name = platform_name(arch);
        const auto short_name =
            std::string(k_platform_os) + "/" + std::string(oci_architecture(arch));
        if (text == name || text == short_name || text == nix_system(arch)) {
            out = arch;
            return true;
        }
    }
    return false;
}

Result<std::vector<Arch>> parse_platforms(std::string_view list) {
    std::vector<Arch> out;
    std::size_t start = 0;
    for (;;) {
        const auto comma = list.find(',', start);
        const auto entry = trim_blanks(list.substr(start, comma - start));
        Arch arch = Arch::amd64;
        if (!parse_platform(entry, arch)) {
            return fail("NIXERY_PLATFORMS: \"" + std::string(entry) +
                        "\" is not a platform this registry builds (linux/amd64, linux/arm64)");
        }
        if (std::find(out.begin(), out.end(), arch) != out.end()) {
            return fail("NIXERY_PLATFORMS: " + platform_name(arch) + " is listed twice");
        }
        out.push_back(arch);
        if (comma == std::string_view::npos) {
            return out;
        }
        start = comma + 1;
    }
}

Arch default_platform(const std::vector<Arch>& platforms) {
    const auto host = std::find(platforms.begin(), platforms.end(), host_arch());
    return host != platforms.end() ? *host : platforms.front();
}

std::vector<Image> platform_images(const Image& requested, const std::vector<Arch>& platforms) {
    if (requested.arch != Arch::amd64) {
        return {requested};
    }
    std::vector<Image> out;
    for (const auto arch : platforms) {
        auto image = requested;
        image.arch = arch;
        if (arch == Arch::arm64) {
            image.name = "arm64/" + requested.name;
        }
        out.push_back(std::move(image));
    }
    return out;
}

} // namespace nixery
