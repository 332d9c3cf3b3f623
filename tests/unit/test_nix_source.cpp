// What the package sources report for an image's labels: NAR hashes in SRI
// form (checked against Nix's own nix-hash), and the start page's record of
// the current package set.
#include "nix/source.hpp"
#include "testutil.hpp"
#include "util/subprocess.hpp"

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

using testutil::TempDir;

namespace {

// The SHA-256 of nothing, in each notation Nix prints.
constexpr std::string_view k_empty_sri = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

} // namespace

TEST_CASE("sri_hash") {
    CHECK(sri_hash("sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73") == k_empty_sri);
    CHECK(sri_hash("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73") == k_empty_sri);
    CHECK(sri_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") ==
          k_empty_sri);
    CHECK(sri_hash(k_empty_sri) == k_empty_sri);
    CHECK(sri_hash("").empty());
    CHECK(sri_hash("sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7e").empty()); // 'e'
    CHECK(sri_hash("sha256:zzdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")
              .empty()); // > 256 bits
    CHECK(sri_hash("md5:d41d8cd98f00b204e9800998ecf8427e").empty());
}

TEST_CASE("directory_nar_hash") {
    TempDir dir;
    testutil::write_file(dir / "pkgs/default.nix", "{ }: { }\n");
    testutil::write_file(dir / "pkgs/lib/x.nix", "1\n");
    const auto path = (dir / "pkgs").string();
    const auto hash = directory_nar_hash(path, std::chrono::seconds(30), "package set");
    REQUIRE(hash);
    CHECK(hash->rfind("sha256-", 0) == 0);
    CHECK(hash->size() == 7 + 44);
    // What Nix itself says, in its base32: the same hash.
    ProcessSpec spec;
    spec.argv = {"nix-hash", "--type", "sha256", "--base32", path};
    const auto nix32 = run_process(spec);
    REQUIRE(nix32);
    CHECK(sri_hash(nix32->out.substr(0, 52)) == *hash);
    // The content, not the name or time, decides.
    testutil::write_file(dir / "pkgs/lib/x.nix", "2\n");
    const auto changed = directory_nar_hash(path, std::chrono::seconds(30), "package set");
    REQUIRE(changed);
    CHECK(*changed != *hash);

    const auto missing =
        directory_nar_hash((dir / "none").string(), std::chrono::seconds(30), "package set at X");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == FailureKind::unavailable);
    CHECK(missing.error().message.find("package set at X") != std::string::npos);
}

TEST_CASE("current_source") {
    TempDir dir;
    Config config;
    config.state_dir = dir.path();
    CHECK_FALSE(current_source(config));
    record_current_source(config,
                          {"git", "https://example.com/p.git", {}, std::string(40, 'a'), {}});
    const auto current = current_source(config);
    REQUIRE(current);
    CHECK(current->provenance.type == "git");
    CHECK(current->provenance.revision == std::string(40, 'a'));
    CHECK(current->recorded_at > 0);
    testutil::write_file(dir / "current-source.json", "garbage");
    CHECK_FALSE(current_source(config));
}

TEST_SUITE_END();
