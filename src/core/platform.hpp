// The platforms an image is built for (NIXERY_PLATFORMS): OCI platform
// strings ("linux/arm64") and what they mean here, an architecture with its
// Nix system and OCI variant. Every platform is Linux; the architectures are
// those an image name can select (core/image.hpp). Pure: no I/O.
//
// Spec: https://github.com/opencontainers/image-spec/blob/main/image-index.md
#pragma once

#include "core/image.hpp"
#include "util/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nixery {

inline constexpr std::string_view k_platform_os = "linux";

// The OCI variant of an architecture: "v8" for arm64, none for amd64.
std::string_view oci_variant(Arch arch);

// "linux/amd64", "linux/arm64/v8": how people and clients name a platform.
std::string platform_name(Arch arch);

// The platform of the machine this program was built for: what an image
// name without "arm64/" is built for by default.
Arch host_arch();

// One platform: "linux/amd64", "linux/arm64", "linux/arm64/v8", or a Nix
// system ("x86_64-linux", "aarch64-linux"). False when it is none of them.
bool parse_platform(std::string_view text, Arch& out);

// A comma-separated list of platforms, in order, without repeats; spaces
// around a name are ignored. An error says which entry is wrong and what
// the choices are.
Result<std::vector<Arch>> parse_platforms(std::string_view list);

// The platform served to a client that accepts no index: the host's when it
// is listed, else the first listed. `platforms` must not be empty.
Arch default_platform(const std::vector<Arch>& platforms);

// The images one name means, one per platform. A name with "arm64/" is
// that one arm64 image, as always; any other is the image for each of
// `platforms`, in order, each named as a request for that platform alone
// would name it ("arm64/" + name for arm64), so the two share one build.
std::vector<Image> platform_images(const Image& requested, const std::vector<Arch>& platforms);

} // namespace nixery
