#include "core/cache_keys.hpp"
#include "core/manifest.hpp"
#include "core/provenance.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <map>
#include <rapidjson/document.h>

using namespace nixery;

namespace {

const std::string k_hello = "/nix/store/" + std::string(32, 'h') + "-hello-2.12.1";
const std::string k_glibc = "/nix/store/" + std::string(32, 'g') + "-glibc-2.40-66";
const std::string k_cacert = "/nix/store/" + std::string(32, 'c') + "-nss-cacert-3.101";
const std::string k_commit(40, 'a');

ImageProvenance git_image() {
    return ImageProvenance{"shell/hello",
                           {{"hello", k_hello}, {"cacert", k_cacert}},
                           {"git", "https://example.com/pkgs.git", {}, k_commit, {}}};
}

std::map<std::string, std::string> as_map(const Labels& labels) {
    return {labels.begin(), labels.end()};
}

} // namespace

TEST_SUITE_BEGIN("core");

TEST_CASE("manifest_annotations") {
    SUBCASE("a git source: OCI source and revision, the packages with their outputs") {
        const auto labels = manifest_annotations(git_image());
        CHECK(std::is_sorted(labels.begin(), labels.end()));
        const auto m = as_map(labels);
        CHECK(m.at("org.opencontainers.image.title") == "shell/hello");
        CHECK(m.at("org.opencontainers.image.created") == k_fixed_created);
        CHECK(m.at("org.opencontainers.image.source") == "https://example.com/pkgs.git");
        CHECK(m.at("org.opencontainers.image.revision") == k_commit);
        CHECK(m.at("org.nixos.nixery.source.type") == "git");
        CHECK(m.at("org.nixos.nixery.source.revision") == k_commit);
        CHECK(m.count("org.nixos.nixery.source.hash") == 0); // none known: left out
        CHECK(m.count("org.nixos.nixery.layers") == 0);      // the config's only
        rapidjson::Document d;
        d.Parse(m.at("org.nixos.nixery.packages").c_str());
        REQUIRE(d.IsObject());
        CHECK(std::string(d["hello"].GetString()) == k_hello);
        CHECK(std::string(d["cacert"].GetString()) == k_cacert);
        // Request order, not sorted.
        CHECK(std::string(d.MemberBegin()->name.GetString()) == "hello");
    }
    SUBCASE("a path: no OCI source or revision, no server path, its content hash") {
        auto image = git_image();
        image.source = {"path", "/srv/pkgs", {}, {}, "sha256-" + std::string(43, 'A') + "="};
        const auto m = as_map(manifest_annotations(image));
        CHECK(m.count("org.opencontainers.image.source") == 0);
        CHECK(m.count("org.opencontainers.image.revision") == 0);
        CHECK(m.count("org.nixos.nixery.source.location") == 0);
        CHECK(m.at("org.nixos.nixery.source.hash") == image.source.hash);
    }
    SUBCASE("a local repository or mirror is no public location; a remote one is") {
        auto image = git_image();
        for (const auto* local : {"/srv/pkgs.git", "file:///srv/pkgs.git", "FILE:///srv/x.tar.gz",
                                  "/srv/odd:name.git"}) {
            image.source.location = local;
            const auto m = as_map(manifest_annotations(image));
            CHECK_MESSAGE(m.count("org.nixos.nixery.source.location") == 0, local);
            CHECK_MESSAGE(m.count("org.opencontainers.image.source") == 0, local);
            CHECK(m.at("org.opencontainers.image.revision") == k_commit);
        }
        for (const auto* remote : {"git@example.com:company/pkgs.git", "ssh://example.com/pkgs.git",
                                   "https://example.com/pkgs.git"}) {
            image.source.location = remote;
            const auto m = as_map(manifest_annotations(image));
            CHECK(m.at("org.nixos.nixery.source.location") == remote);
            CHECK(m.at("org.opencontainers.image.source") == remote);
        }
    }
    SUBCASE("a channel: its name, tarball URL, revision and hash") {
        auto image = git_image();
        image.source = {"channel", "https://channels.example/nixos-24.05.tar.gz", "nixos-24.05",
                        k_commit, "sha256-x"};
        const auto m = as_map(manifest_annotations(image));
        CHECK(m.at("org.opencontainers.image.source") == image.source.location);
        CHECK(m.at("org.opencontainers.image.revision") == k_commit);
        CHECK(m.at("org.nixos.nixery.source.channel") == "nixos-24.05");
        CHECK(m.at("org.nixos.nixery.source.hash") == "sha256-x");
    }
}

TEST_CASE("index_annotations: what every platform shares, and the title") {
    const Labels amd{{"org.nixos.nixery.packages", "{\"a\":\"/nix/store/x-a\"}"},
                     {"org.opencontainers.image.created", "1970-01-01T00:00:01Z"},
                     {"org.opencontainers.image.revision", "abc"},
                     {"org.opencontainers.image.title", "hello"}};
    const Labels arm{{"org.nixos.nixery.packages", "{\"a\":\"/nix/store/y-a\"}"},
                     {"org.opencontainers.image.created", "1970-01-01T00:00:01Z"},
                     {"org.opencontainers.image.revision", "abc"},
                     {"org.opencontainers.image.title", "arm64/hello"}};
    const auto out = index_annotations({amd, arm}, "hello");
    CHECK(out == Labels{{"org.opencontainers.image.created", "1970-01-01T00:00:01Z"},
                        {"org.opencontainers.image.revision", "abc"},
                        {"org.opencontainers.image.title", "hello"}});
    CHECK(index_annotations({}, "x") == Labels{{"org.opencontainers.image.title", "x"}});
}

TEST_CASE("config_labels") {
    const auto labels = config_labels(git_image(), {{k_glibc}, {k_hello, k_cacert}, {}});
    CHECK(std::is_sorted(labels.begin(), labels.end()));
    const auto m = as_map(labels);
    // Everything the manifest says, and the layers.
    for (const auto& [key, value] : manifest_annotations(git_image())) {
        CHECK(m.at(key) == value);
    }
    rapidjson::Document d;
    d.Parse(m.at("org.nixos.nixery.layers").c_str());
    REQUIRE(d.IsArray());
    REQUIRE(d.Size() == 3);
    CHECK(std::string(d[0][0].GetString()) == k_glibc.substr(11));
    CHECK(std::string(d[1][1].GetString()) == k_cacert.substr(11));
    CHECK(d[2].Size() == 0);

    // Deterministic, and in the config as Labels.
    CHECK(labels == config_labels(git_image(), {{k_glibc}, {k_hello, k_cacert}, {}}));
    ImageConfig cfg;
    cfg.labels = labels;
    rapidjson::Document c;
    c.Parse(config_json(cfg).c_str());
    CHECK(std::string(c["config"]["Labels"]["org.opencontainers.image.title"].GetString()) ==
          "shell/hello");
}

TEST_CASE("provenance_digest") {
    const auto base = provenance_digest(git_image());
    CHECK(base == provenance_digest(git_image()));
    auto other = git_image();
    other.name = "hello/shell";
    CHECK(provenance_digest(other) != base);
    other = git_image();
    other.source.revision = std::string(40, 'b');
    CHECK(provenance_digest(other) != base);
    other = git_image();
    other.packages.pop_back();
    CHECK(provenance_digest(other) != base);

    // The closure key follows it: a new commit with the same outputs is a
    // new image (its labels differ), not the old one's bytes.
    const auto key = [](std::string_view provenance) {
        return closure_key({k_hello}, Arch::amd64, false, "pop", 94, provenance);
    };
    CHECK(key(base) != key(provenance_digest(other)));
    CHECK(key(base) == key(base));
}

TEST_CASE("canonical_image_name") {
    const auto canonical = [](std::string_view name) {
        return canonical_image_name(parse_image_name(name));
    };
    CHECK(canonical("hello") == "hello");
    CHECK(canonical("b/a") == "a/b");
    CHECK(canonical("a/b") == "a/b");
    CHECK(canonical("shell/hello") == "shell/hello");
    CHECK(canonical("shell/hello/coreutils") == "shell/hello");
    CHECK(canonical("arm64/shell/b/a") == "arm64/shell/a/b");
    CHECK(canonical("shell/arm64/a") == "arm64/shell/a");
    CHECK(canonical("hello/shell") == "hello/shell"); // a package named "shell"
    CHECK(canonical("arm64") == "arm64");
    // Every spelling of one image key has one title.
    for (const auto* name : {"shell/hello/nano", "nano/shell/hello", "shell/shell/hello"}) {
        const auto image = parse_image_name(name);
        if (image_key("r", image, "l", LayerCompression::gzip) ==
            image_key("r", parse_image_name("shell/hello"), "l", LayerCompression::gzip)) {
            CHECK(canonical(name) == "shell/hello");
        }
    }
}

TEST_CASE("url_without_credentials") {
    CHECK(url_without_credentials("https://user:secret@example.com/pkgs.git") ==
          "https://example.com/pkgs.git");
    CHECK(url_without_credentials("https://token@example.com:8443/a@b/c.tar.gz?sig=x#f") ==
          "https://example.com:8443/a@b/c.tar.gz");
    CHECK(url_without_credentials("https://example.com/x.tar.gz") ==
          "https://example.com/x.tar.gz");
    CHECK(url_without_credentials("git@example.com:pkgs.git") == "git@example.com:pkgs.git");
    CHECK(url_without_credentials("/srv/pkgs#1.git") == "/srv/pkgs#1.git");
    CHECK(url_without_credentials("file:///srv/pkgs.git") == "file:///srv/pkgs.git");
}

TEST_CASE("provenance_json") {
    const SourceProvenance p{"channel", "https://x/y.tar.gz", "nixos-24.05", k_commit, "sha256-z"};
    const auto back = parse_provenance_json(provenance_json(p));
    CHECK(back.type == p.type);
    CHECK(back.location == p.location);
    CHECK(back.channel == p.channel);
    CHECK(back.revision == p.revision);
    CHECK(back.hash == p.hash);
    CHECK(parse_provenance_json("not json").type.empty());
    CHECK(parse_provenance_json("[1]").type.empty());
    CHECK(parse_provenance_json(R"({"type":3})").type.empty());
}

TEST_SUITE_END();
