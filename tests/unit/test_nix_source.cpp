#include "nix/source.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("nix");

TEST_CASE("nix_settings") {
    Config config;
    config.nix_timeout = std::chrono::seconds(42);
    config.build_timeout = std::chrono::seconds(600);
    config.nixpkgs_config = "/etc/nixery/nixpkgs.nix";
    const auto settings = nix_settings(config);
    CHECK(settings.timeout == std::chrono::seconds(42));
    CHECK(settings.build_timeout == std::chrono::seconds(600));
    CHECK(settings.nixpkgs_config == "/etc/nixery/nixpkgs.nix");
}

TEST_SUITE_END();
