#include "core/manifest.hpp"
#include "storage/filesystem.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

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
    SUBCASE("without a directory for links, nothing is linked") {
        auto plain = make_filesystem_storage(dir / "storage");
        REQUIRE(plain->serve_directly(key, media_type::layer_blob));
        CHECK(std::filesystem::is_empty(served / "blobs"));
    }
}

TEST_SUITE_END();
