#include "nix/source.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("nix");

TEST_CASE("nix_settings: tarball-ttl for channels only") {
    Config config;
    config.source_ttl = std::chrono::seconds(300);
    config.source = SourceKind::channel;
    CHECK(nix_options(nix_settings(config)) ==
          std::vector<std::string>{"--option", "tarball-ttl", "300"});
    // Other sources pass no option a Nix daemon would warn about.
    config.source = SourceKind::path;
    CHECK(nix_options(nix_settings(config)).empty());
    config.source = SourceKind::git;
    CHECK(nix_options(nix_settings(config)).empty());
}

TEST_SUITE_END();
