#include "core/platform.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

TEST_CASE("platforms: names, Nix systems and variants") {
    CHECK(platform_name(Arch::amd64) == "linux/amd64");
    CHECK(platform_name(Arch::arm64) == "linux/arm64/v8");
    CHECK(oci_variant(Arch::arm64) == "v8");
    CHECK(oci_variant(Arch::amd64).empty());
    Arch arch = Arch::amd64;
    for (const char* arm : {"linux/arm64", "linux/arm64/v8", "aarch64-linux"}) {
        arch = Arch::amd64;
        CHECK(parse_platform(arm, arch));
        CHECK(arch == Arch::arm64);
        CHECK(nix_system(arch) == "aarch64-linux");
    }
    for (const char* amd : {"linux/amd64", "x86_64-linux"}) {
        arch = Arch::arm64;
        CHECK(parse_platform(amd, arch));
        CHECK(arch == Arch::amd64);
    }
    for (const char* bad : {"", "linux", "arm64", "linux/arm64/v7", "windows/amd64", "linux/386",
                            "Linux/amd64", "linux/amd64 "}) {
        CHECK_FALSE(parse_platform(bad, arch));
    }
}

TEST_CASE("parse_platforms: a list in order, errors that say what is wrong") {
    const auto two = parse_platforms("linux/amd64, linux/arm64");
    REQUIRE(two);
    CHECK(*two == std::vector<Arch>{Arch::amd64, Arch::arm64});
    const auto reversed = parse_platforms("linux/arm64,linux/amd64");
    REQUIRE(reversed);
    CHECK(*reversed == std::vector<Arch>{Arch::arm64, Arch::amd64});
    const auto bad = parse_platforms("linux/amd64,linux/s390x");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("\"linux/s390x\" is not a platform") != std::string::npos);
    CHECK(bad.error().message.find("linux/arm64") != std::string::npos);
    const auto twice = parse_platforms("linux/arm64,aarch64-linux");
    REQUIRE_FALSE(twice);
    CHECK(twice.error().message.find("listed twice") != std::string::npos);
    CHECK_FALSE(parse_platforms("linux/amd64,"));
}

TEST_CASE("default_platform: the host's when listed, else the first") {
    CHECK(default_platform({host_arch()}) == host_arch());
    CHECK(default_platform({Arch::arm64, Arch::amd64}) == host_arch());
    const auto other = host_arch() == Arch::amd64 ? Arch::arm64 : Arch::amd64;
    CHECK(default_platform({other}) == other);
}

TEST_CASE("platform_images: one per platform, named as the single-platform request") {
    const auto image = parse_image_name("shell/hello");
    const auto both = platform_images(image, {Arch::amd64, Arch::arm64});
    REQUIRE(both.size() == 2);
    CHECK(both[0].name == "shell/hello");
    CHECK(both[0].arch == Arch::amd64);
    CHECK(both[1].name == "arm64/shell/hello");
    CHECK(both[1].arch == Arch::arm64);
    // The arm64 half is exactly what the arm64/ name means.
    const auto arm = parse_image_name("arm64/shell/hello");
    CHECK(both[1].packages == arm.packages);
    CHECK(parse_image_name(both[1].name).arch == Arch::arm64);
    // An arm64/ name stays one arm64 image, whatever the platforms.
    const auto prefixed = platform_images(arm, {Arch::amd64, Arch::arm64});
    REQUIRE(prefixed.size() == 1);
    CHECK(prefixed[0].name == "arm64/shell/hello");
    // One platform: the image as it was.
    const auto one = platform_images(image, {Arch::amd64});
    REQUIRE(one.size() == 1);
    CHECK(one[0].name == "shell/hello");
}

TEST_SUITE_END();
