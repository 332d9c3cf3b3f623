#include "layout/image_files.hpp"

#include "core/image_layout.hpp"
#include "core/manifest.hpp"
#include "storage/filesystem.hpp"
#include "testutil.hpp"
#include "util/sha256.hpp"

#include <doctest/doctest.h>
#include <map>
#include <rapidjson/document.h>

using namespace nixery;
using testutil::TempDir;

namespace {

struct Fixture {
    TempDir dir;
    std::unique_ptr<StorageBackend> storage = make_filesystem_storage(dir / "storage");

    Fixture() { REQUIRE(storage->check()); }

    // Stores `data` under its digest, as the builder stores every blob.
    std::string put(const std::string& data) {
        const auto digest = sha256_digest(data);
        REQUIRE(storage->put(blob_key(digest.substr(7)), data, ""));
        return digest;
    }

    // A manifest of `format` with a config and the given layers, stored.
    TopDocument manifest(ManifestFormat format, const std::string& arch,
                         const std::vector<std::string>& layers) {
        const auto config = R"({"architecture":")" + arch + R"(","os":"linux"})";
        std::vector<LayerDescriptor> descriptors;
        for (const auto& l : layers) {
            LayerDescriptor d;
            d.digest = put(l);
            d.diff_id = d.digest;
            d.size = l.size();
            descriptors.push_back(d);
        }
        auto body = manifest_json(format, put(config), config.size(), descriptors, {});
        auto digest = put(body);
        return {body, std::string(manifest_media_type(format)), digest};
    }

    // An OCI index of stored manifests, one per architecture, stored.
    TopDocument index(const std::vector<std::pair<std::string, TopDocument>>& entries) {
        std::string body = R"({"schemaVersion":2,"mediaType":")" +
                           std::string("application/vnd.oci.image.index.v1+json") +
                           R"(","manifests":[)";
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const auto& [arch, m] = entries[i];
            body += (i ? "," : "") + std::string(R"({"mediaType":")") + m.media_type +
                    R"(","digest":")" + m.digest + R"(","size":)" + std::to_string(m.body.size()) +
                    R"(,"platform":{"os":"linux","architecture":")" + arch + R"("}})";
        }
        body += "]}";
        return {body, "application/vnd.oci.image.index.v1+json", put(body)};
    }
};

std::string blob_in(const std::filesystem::path& layout, const std::string& digest) {
    return testutil::slurp(layout / layout_blob_path(digest));
}

std::vector<std::string> referenced(const std::string& manifest) {
    const auto doc = parse_image_document(manifest);
    REQUIRE(doc);
    std::vector<std::string> out{doc->config.digest};
    for (const auto& l : doc->layers) {
        out.push_back(l.digest);
    }
    return out;
}

// path → content of an uncompressed tar (names under 100 bytes).
std::map<std::string, std::string> read_tar(const std::string& tar) {
    std::map<std::string, std::string> out;
    std::size_t at = 0;
    while (at + 512 <= tar.size() && tar[at] != '\0') {
        const std::string name(tar.c_str() + at);
        const auto size = std::stoull(tar.substr(at + 124, 12), nullptr, 8);
        out[name] = tar.substr(at + 512, size);
        at += 512 + (size + 511) / 512 * 512;
    }
    return out;
}

} // namespace

TEST_SUITE_BEGIN("layout");

TEST_CASE("write_oci_layout") {
    Fixture f;
    const auto layout = f.dir / "layout";

    SUBCASE("a manifest: itself, its config and layers, named by the tag") {
        const std::string big(3 << 20, 'x'); // several pieces of a read
        const auto top = f.manifest(ManifestFormat::oci, "amd64", {"layer one", big});
        const auto written = write_oci_layout(*f.storage, top, "v1", layout);
        REQUIRE(written);
        CHECK(written->blobs_copied == 4);
        CHECK(testutil::slurp(layout / "oci-layout") == oci_layout_json());
        CHECK(blob_in(layout, top.digest) == top.body);
        for (const auto& d : referenced(top.body)) {
            CHECK(sha256_digest(blob_in(layout, d)) == d);
        }
        rapidjson::Document index;
        const auto text = testutil::slurp(layout / "index.json");
        index.Parse(text.c_str());
        REQUIRE(index["manifests"].Size() == 1);
        CHECK(std::string(index["manifests"][0]["digest"].GetString()) == top.digest);
        CHECK(std::string(index["manifests"][0]["mediaType"].GetString()) == top.media_type);

        SUBCASE("written again, the blobs present are kept") {
            const auto again = write_oci_layout(*f.storage, top, "v2", layout);
            REQUIRE(again);
            CHECK(again->blobs_copied == 0);
            CHECK(again->blobs_present == 4);
        }
    }
    SUBCASE("an index: every platform's manifest, config and layers") {
        const auto amd = f.manifest(ManifestFormat::oci, "amd64", {"amd layer", "shared"});
        const auto arm = f.manifest(ManifestFormat::oci, "arm64", {"arm layer", "shared"});
        const auto top = f.index({{"amd64", amd}, {"arm64", arm}});
        const auto written = write_oci_layout(*f.storage, top, "latest", layout);
        REQUIRE(written);
        CHECK(written->blobs_copied == 8); // index, 2 manifests, 2 configs, 3 layers
        CHECK(blob_in(layout, top.digest) == top.body);
        for (const auto* m : {&amd, &arm}) {
            CHECK(blob_in(layout, m->digest) == m->body);
            for (const auto& d : referenced(m->body)) {
                CHECK(sha256_digest(blob_in(layout, d)) == d);
            }
        }
        const auto index = testutil::slurp(layout / "index.json");
        CHECK(index.find(top.digest) != std::string::npos);
        CHECK(index.find("application/vnd.oci.image.index.v1+json\",\"digest\"") !=
              std::string::npos);
    }
    SUBCASE("a damaged or missing blob is an error and leaves no file") {
        const auto top = f.manifest(ManifestFormat::oci, "amd64", {"the real layer"});
        const auto layer = referenced(top.body)[1];
        SUBCASE("damaged") {
            REQUIRE(f.storage->put(blob_key(layer.substr(7)), "the fake layer", ""));
            const auto written = write_oci_layout(*f.storage, top, "v1", layout);
            REQUIRE_FALSE(written);
            CHECK(written.error().message.find(layer + " in storage does not match") !=
                  std::string::npos);
        }
        SUBCASE("longer than it says") {
            REQUIRE(f.storage->put(blob_key(layer.substr(7)), "the real layer and more", ""));
            REQUIRE_FALSE(write_oci_layout(*f.storage, top, "v1", layout));
        }
        SUBCASE("missing") {
            REQUIRE(f.storage->remove(blob_key(layer.substr(7))));
            const auto written = write_oci_layout(*f.storage, top, "v1", layout);
            REQUIRE_FALSE(written);
            CHECK(written.error().message == "blob " + layer + " is missing from storage");
        }
        CHECK_FALSE(std::filesystem::exists(layout / layout_blob_path(layer)));
        CHECK_FALSE(std::filesystem::exists(layout / "index.json"));
        // No staging file is left behind either.
        for (const auto& e : std::filesystem::directory_iterator(layout / "blobs/sha256")) {
            CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
        }
    }
    SUBCASE("a top document that is not what its digest says is refused") {
        auto top = f.manifest(ManifestFormat::oci, "amd64", {"layer"});
        top.body += " ";
        REQUIRE_FALSE(write_oci_layout(*f.storage, top, "v1", layout));
    }
    SUBCASE("a directory with other files is refused, untouched") {
        const auto top = f.manifest(ManifestFormat::oci, "amd64", {"layer"});
        testutil::write_file(layout / "mine.txt", "mine");
        CHECK_FALSE(check_layout_target(layout));
        const auto written = write_oci_layout(*f.storage, top, "v1", layout);
        REQUIRE_FALSE(written);
        CHECK(written.error().message.find("neither empty nor an OCI image layout") !=
              std::string::npos);
        CHECK_FALSE(std::filesystem::exists(layout / "blobs"));
    }
    SUBCASE("blobs/ alone is what an interrupted write left; with anything else, refused") {
        std::filesystem::create_directories(layout / "blobs" / "sha256");
        CHECK(check_layout_target(layout));
        testutil::write_file(layout / "mine.txt", "mine");
        CHECK_FALSE(check_layout_target(layout));
    }
}

TEST_CASE("write_docker_archive") {
    Fixture f;
    const auto file = f.dir / "image.tar";

    SUBCASE("a manifest: manifest.json, the config and the layers") {
        const auto top = f.manifest(ManifestFormat::docker, "amd64", {"one", "two"});
        REQUIRE(write_docker_archive(*f.storage, top, "amd64", "app:v1", file));
        const auto entries = read_tar(testutil::slurp(file));
        const auto blobs = referenced(top.body);
        CHECK(entries.size() == 2 + blobs.size() + 1); // blobs/, blobs/sha256/, blobs, manifest
        for (const auto& d : blobs) {
            REQUIRE(entries.count(layout_blob_path(d)) == 1);
            CHECK(sha256_digest(entries.at(layout_blob_path(d))) == d);
        }
        const auto doc = parse_image_document(top.body);
        REQUIRE(doc);
        CHECK(entries.at("manifest.json") ==
              docker_archive_manifest_json(doc->config, doc->layers, "app:v1"));
    }
    SUBCASE("an index: the manifest of the platform asked for") {
        const auto amd = f.manifest(ManifestFormat::docker, "amd64", {"amd layer"});
        const auto arm = f.manifest(ManifestFormat::docker, "arm64", {"arm layer"});
        const auto top = f.index({{"amd64", amd}, {"arm64", arm}});
        REQUIRE(write_docker_archive(*f.storage, top, "arm64", "app:v1", file));
        const auto entries = read_tar(testutil::slurp(file));
        for (const auto& d : referenced(arm.body)) {
            CHECK(entries.count(layout_blob_path(d)) == 1);
        }
        CHECK(entries.count(layout_blob_path(referenced(amd.body)[1])) == 0);
        const auto none = write_docker_archive(*f.storage, top, "riscv64", "app:v1", f.dir / "x");
        REQUIRE_FALSE(none);
        CHECK(none.error().message == "the image has no manifest for linux/riscv64");
        CHECK_FALSE(std::filesystem::exists(f.dir / "x"));
    }
    SUBCASE("a damaged layer leaves no file") {
        const auto top = f.manifest(ManifestFormat::docker, "amd64", {"the real layer"});
        const auto layer = referenced(top.body)[1];
        REQUIRE(f.storage->put(blob_key(layer.substr(7)), "the fake layer", ""));
        REQUIRE_FALSE(write_docker_archive(*f.storage, top, "amd64", "app:v1", file));
        CHECK_FALSE(std::filesystem::exists(file));
        for (const auto& e : std::filesystem::directory_iterator(f.dir.path())) {
            CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
        }
    }
}

TEST_SUITE_END();
