#include "core/manifest.hpp"
#include "storage/filesystem.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <string>
#include <unistd.h>
#include <vector>

using namespace nixery;
using testutil::TempDir;

namespace {

const std::string k_hex(64, 'a');

std::string link_target(const std::filesystem::path& link) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(link, ec);
    return ec ? std::string() : target.string();
}

} // namespace

TEST_SUITE_BEGIN("storage");

TEST_CASE("FilesystemBackend::serve_directly") {
    TempDir dir;
    const auto served = dir / "state/served";
    auto storage = make_filesystem_storage(dir / "storage", served);
    REQUIRE(storage->check());
    const auto key = blob_key(k_hex);
    REQUIRE(storage->put(key, "blob", ""));
    const auto blob = (dir / "storage" / key).string();

    SUBCASE("a link named by the media type nginx serves it with, to the blob") {
        REQUIRE(storage->serve_directly(key, media_type::layer_blob));
        CHECK(link_target(served / "blobs" / (k_hex + ".layer")) == blob);
        REQUIRE(storage->serve_directly(key, media_type::docker_config));
        CHECK(link_target(served / "blobs" / (k_hex + ".docker-config")) == blob);
        REQUIRE(storage->serve_directly(key, media_type::oci_config));
        CHECK(link_target(served / "blobs" / (k_hex + ".oci-config")) == blob);
        REQUIRE(storage->serve_directly(key, media_type::layer_blob)); // again: no error
    }
    SUBCASE("manifests, other types and other keys get none") {
        REQUIRE(storage->serve_directly(key, media_type::docker_manifest));
        REQUIRE(storage->serve_directly(key, media_type::oci_manifest));
        REQUIRE(storage->serve_directly(key, "text/html"));
        REQUIRE(storage->put("cache/used/" + k_hex, "1", ""));
        REQUIRE(storage->serve_directly("cache/used/" + k_hex, media_type::layer_blob));
        CHECK(std::filesystem::is_empty(served / "blobs"));
        CHECK_FALSE(storage->serve_directly("layers/../../x", media_type::layer_blob));
    }
    SUBCASE("removing the blob removes its links") {
        REQUIRE(storage->serve_directly(key, media_type::layer_blob));
        REQUIRE(storage->serve_directly(key, media_type::docker_config));
        REQUIRE(storage->remove(key));
        CHECK(std::filesystem::is_empty(served / "blobs"));
        CHECK_FALSE(*storage->exists(key));
        REQUIRE(storage->remove(key)); // absent: not an error
    }
    SUBCASE("a manifest: one link, named by nginx's minute and the media type") {
        const auto links = served / "manifests" / k_hex;
        REQUIRE(
            storage->serve_manifest_directly(key, media_type::docker_manifest, "2026-12-05T07:52"));
        CHECK(link_target(links / "2026-12-05T07:52.docker-manifest") == blob);
        // The same minute again (another worker): no error, one link.
        REQUIRE(
            storage->serve_manifest_directly(key, media_type::docker_manifest, "2026-12-05T07:52"));
        // The next minute's link replaces it (and an OCI client's type).
        REQUIRE(
            storage->serve_manifest_directly(key, media_type::oci_manifest, "2026-12-05T07:53"));
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(links)) {
            names.push_back(entry.path().filename().string());
        }
        CHECK(names == std::vector<std::string>{"2026-12-05T07:53.oci-manifest"});
        // An index and a manifest list (several platforms) likewise.
        REQUIRE(storage->serve_manifest_directly(key, media_type::oci_index, "2026-12-05T07:54"));
        CHECK(link_target(links / "2026-12-05T07:54.oci-index") == blob);
        REQUIRE(storage->serve_manifest_directly(key, media_type::docker_manifest_list,
                                                 "2026-12-05T07:55"));
        CHECK(link_target(links / "2026-12-05T07:55.docker-list") == blob);
        // Removing the manifest removes its links and their directory.
        REQUIRE(storage->remove(key));
        CHECK_FALSE(std::filesystem::exists(links));
    }
    SUBCASE("a manifest link needs a minute of nginx's shape and a manifest's type") {
        for (const std::string bad : {"", "2026-12-05T07:5", "2026-12-05T07:52:00", "../../etc/x",
                                      "2026-12-05T07/52", "2026-12-05 07:52"}) {
            CHECK_FALSE(storage->serve_manifest_directly(key, media_type::docker_manifest, bad));
        }
        REQUIRE(storage->serve_manifest_directly(key, media_type::layer_blob, "2026-12-05T07:52"));
        REQUIRE(storage->serve_manifest_directly(key, "text/html", "2026-12-05T07:52"));
        CHECK(std::filesystem::is_empty(served / "manifests"));
    }
    SUBCASE("without a directory for links, nothing is linked") {
        auto plain = make_filesystem_storage(dir / "storage");
        REQUIRE(plain->serve_directly(key, media_type::layer_blob));
        REQUIRE(
            plain->serve_manifest_directly(key, media_type::docker_manifest, "2026-12-05T07:52"));
        CHECK(std::filesystem::is_empty(served / "blobs"));
        CHECK(std::filesystem::is_empty(served / "manifests"));
    }
}

TEST_SUITE_END();
