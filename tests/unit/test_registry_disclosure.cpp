#include "registry/disclosure.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

using namespace nixery;

TEST_SUITE_BEGIN("registry");

namespace {

Config config() {
    Config c;
    c.state_dir = "/var/lib/nixery-state";
    c.storage_path = "/var/lib/nixery-state/storage";
    c.data.nix_dir = "/usr/share/nixery/nix";
    c.data.sql_dir = "/usr/share/nixery/sql";
    c.source = SourceKind::path;
    c.source_location = "/srv/private/pkgs";
    c.nixpkgs_config = "/etc/nixery/nixpkgs-config.nix";
    c.s3.bucket = "acme-secret-bucket";
    c.s3.secret_access_key = "wJalrXUtnFEMI";
    c.s3.session_token = "FQoGZXIvYXdzEJr";
    c.home_dir = "/home/nixery";
    c.cache_home = "/var/cache/nixery";
    return c;
}

} // namespace

TEST_CASE("Disclosure::scrub") {
    const Disclosure d(config());
    SUBCASE("server paths, the longest first") {
        CHECK(d.scrub("rename \"/var/lib/nixery-state/storage/blobs/ab\" failed") ==
              "rename \"<storage>/blobs/ab\" failed");
        CHECK(d.scrub("error: undefined variable at /srv/private/pkgs/default.nix:3:1") ==
              "error: undefined variable at <package set>/default.nix:3:1");
        CHECK(d.scrub("at /usr/share/nixery/nix/image.nix:12") == "at <nixery>/image.nix:12");
        // Files beside the package set (a nixpkgs it imports), the home and
        // the cache directories Nix uses.
        CHECK(d.scrub("at /srv/private/nixpkgs/pkgs/tools/thing.nix:2:1:") ==
              "at <package set>/../nixpkgs/pkgs/tools/thing.nix:2:1:");
        CHECK(d.scrub("HOME=/home/nixery XDG=/var/cache/nixery/nix") ==
              "HOME=<home> XDG=<cache>/nix");
        // Only where a path's name ends.
        CHECK(d.scrub("/home/nixery-old/x /home/nixery2 /home/nixery.") ==
              "/home/nixery-old/x /home/nixery2 <home>.");
        // A syntax error in NIXERY_NIXPKGS_CONFIG is reported at its path.
        CHECK(d.scrub("error: syntax error, at /etc/nixery/nixpkgs-config.nix:1:67") ==
              "error: syntax error, at <nixpkgs config>:1:67");
    }
    SUBCASE("bucket names, keys and URL credentials") {
        CHECK(d.scrub("PUT s3://acme-secret-bucket/x failed") == "PUT s3://<bucket>/x failed");
        CHECK(d.scrub("GET https://acme-secret-bucket.s3.example.com/x: 403") ==
              "GET https://<bucket>.s3.example.com/x: 403");
        CHECK(d.scrub("<Error><BucketName>acme-secret-bucket</BucketName></Error>") ==
              "<Error><BucketName><bucket></BucketName></Error>");
        CHECK(d.scrub("signed with wJalrXUtnFEMI") == "signed with <redacted>");
        CHECK(d.scrub("token FQoGZXIvYXdzEJr rejected") == "token <redacted> rejected");
        CHECK(d.scrub("unable to download 'https://user:secret@mirror.example/c.tar.gz': 401") ==
              "unable to download 'https://mirror.example/c.tar.gz': 401");
    }
    SUBCASE("package names, tags and Nix's words are kept") {
        CHECK(d.scrub("package \"hello\" is not in the package set") ==
              "package \"hello\" is not in the package set");
    }
}

TEST_CASE("Disclosure::scrub: a bucket named like a word stays in prose") {
    auto c = config();
    c.s3.bucket = "images";
    const Disclosure d(c);
    CHECK(d.scrub("the package set takes no \"system\" argument, so it cannot build arm64 "
                  "images") ==
          "the package set takes no \"system\" argument, so it cannot build arm64 images");
    CHECK(d.scrub("PUT s3://images/layers/x failed; GET http://127.0.0.1:9000/images/x, "
                  "bucket \"images\"") ==
          "PUT s3://<bucket>/layers/x failed; GET http://127.0.0.1:9000/<bucket>/x, bucket "
          "\"<bucket>\"");
}

TEST_CASE("Disclosure::scrub: a git repository on this server") {
    auto c = config();
    c.source = SourceKind::git;
    c.source_location = "/srv/git/pkgs.git";
    const Disclosure d(c);
    CHECK(d.scrub("the git repository /srv/git/pkgs.git has no branch or tag \"x\"") ==
          "the git repository <git repository> has no branch or tag \"x\"");
    c.source_location = "https://git.example.com/pkgs.git";
    CHECK(Disclosure(c).scrub("the git repository https://git.example.com/pkgs.git") ==
          "the git repository https://git.example.com/pkgs.git");
}

TEST_CASE("Disclosure::scrub: a package set behind a symlink, by its real path too") {
    testutil::TempDir dir;
    std::filesystem::create_directories(dir / "real" / "pkgs");
    std::filesystem::create_directory_symlink(dir / "real", dir / "link");
    auto c = config();
    c.source_location = (dir / "link" / "pkgs").string();
    const Disclosure d(c);
    const auto real = (dir / "real" / "pkgs" / "default.nix").string();
    CHECK(d.scrub("error: undefined variable at " + real + ":3:1") ==
          "error: undefined variable at <package set>/default.nix:3:1");
    CHECK(d.scrub("at " + c.source_location + "/default.nix:3:1") ==
          "at <package set>/default.nix:3:1");
}

TEST_CASE("Disclosure::for_client") {
    const Disclosure d(config());
    SUBCASE("a server fault names the request id, not the internals") {
        const auto e = d.for_client(
            internal_error("building \"x\" failed: open \"/var/lib/nixery-state/nixery.sqlite\""),
            "0123456789abcdef");
        CHECK(e.message.find("/var/lib") == std::string::npos);
        CHECK(e.message.find("request id 0123456789abcdef") != std::string::npos);
        CHECK(e.detail == R"({"requestId":"0123456789abcdef"})");
    }
    SUBCASE("a client's mistake keeps its detail and needs no request id") {
        const auto e = d.for_client(manifest_unknown("no such package", R"({"missing":["x"]})"),
                                    "0123456789abcdef");
        CHECK(e.message == "no such package");
        CHECK(e.detail == R"({"missing":["x"]})");
    }
}

TEST_SUITE_END();
