// What an image name means: the packages it names and the architecture it is
// built for (../shared/seed/nixery-README.txt). Path components are package
// attribute names; the meta-packages "arm64" and "shell" are recognised only
// as leading components; the result is sorted so "a/b" and "b/a" are the
// same image. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nixery {

enum class Arch { amd64, arm64 };

// The Nix system string ("x86_64-linux") and the OCI architecture ("amd64").
std::string_view nix_system(Arch arch);
std::string_view oci_architecture(Arch arch);

// Packages every "shell" image gets.
inline const std::vector<std::string>& shell_packages() {
    static const std::vector<std::string> k_shell{"bashInteractive", "coreutils", "moreutils",
                                                  "nano"};
    return k_shell;
}

// Added to every image when the package set has them (not reported missing).
inline const std::vector<std::string>& implicit_packages() {
    static const std::vector<std::string> k_implicit{"cacert", "iana-etc"};
    return k_implicit;
}

struct Image {
    std::string name; // the repository name as requested
    Arch arch = Arch::amd64;
    // Sorted, without duplicates; each is a package name as written in the
    // image name (dots separate the segments of a nested attribute path).
    std::vector<std::string> packages;
};

// `name` must already be a valid repository name (is_valid_repository_name).
Image parse_image_name(std::string_view name);

// "xorg.xev" → {"xorg", "xev"}.
std::vector<std::string> attribute_path(std::string_view package);

} // namespace nixery
