#include "core/image_layout.hpp"

#include "core/manifest.hpp"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

using namespace nixery;

TEST_SUITE_BEGIN("core");

namespace {

std::string digest_of(char c) {
    return "sha256:" + std::string(64, c);
}

std::vector<LayerDescriptor> two_layers() {
    LayerDescriptor a;
    a.digest = digest_of('a');
    a.diff_id = digest_of('1');
    a.size = 100;
    LayerDescriptor b;
    b.digest = digest_of('b');
    b.diff_id = digest_of('2');
    b.size = 200;
    b.compression = LayerCompression::zstd;
    return {a, b};
}

rapidjson::Document parsed(const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str(), json.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

} // namespace

TEST_CASE("parse_image_document") {
    SUBCASE("the manifests the registry writes, in both formats") {
        for (auto format : {ManifestFormat::docker, ManifestFormat::oci}) {
            CAPTURE(static_cast<int>(format));
            const auto json =
                manifest_json(format, digest_of('c'), 123, two_layers(), {{"k", "v"}});
            const auto doc = parse_image_document(json);
            REQUIRE(doc);
            CHECK(doc->kind == DocumentKind::manifest);
            CHECK(doc->config.digest == digest_of('c'));
            CHECK(doc->config.size == 123);
            CHECK(doc->config.media_type == config_media_type(format));
            REQUIRE(doc->layers.size() == 2);
            CHECK(doc->layers[0].digest == digest_of('a'));
            CHECK(doc->layers[0].size == 100);
            CHECK(doc->layers[1].digest == digest_of('b'));
            CHECK(doc->layers[1].size == 200);
            CHECK(doc->entries.empty());
        }
    }
    SUBCASE("an OCI index and a Docker manifest list, with platforms") {
        for (const char* type : {"application/vnd.oci.image.index.v1+json",
                                 "application/vnd.docker.distribution.manifest.list.v2+json"}) {
            CAPTURE(type);
            const auto json = std::string(R"({"schemaVersion":2,"mediaType":")") + type +
                              R"(","manifests":[)"
                              R"({"mediaType":"m","digest":")" +
                              digest_of('d') +
                              R"(","size":5,"platform":{"os":"linux","architecture":"amd64"}},)"
                              R"({"mediaType":"m","digest":")" +
                              digest_of('e') +
                              R"(","size":6,"platform":{"os":"linux","architecture":"arm64",)"
                              R"("variant":"v8"}}]})";
            const auto doc = parse_image_document(json);
            REQUIRE(doc);
            CHECK(doc->kind == DocumentKind::index);
            REQUIRE(doc->entries.size() == 2);
            CHECK(doc->entries[1].digest == digest_of('e'));
            CHECK(doc->entries[1].size == 6);
            CHECK(doc->entries[1].architecture == "arm64");
            CHECK(doc->entries[1].variant == "v8");
            CHECK(is_index_media_type(type));
            REQUIRE(platform_entry(*doc, "arm64"));
            CHECK(platform_entry(*doc, "arm64")->digest == digest_of('e'));
            CHECK(platform_entry(*doc, "amd64")->digest == digest_of('d'));
            CHECK_FALSE(platform_entry(*doc, "riscv64"));
        }
    }
    SUBCASE("an index's entry for another OS is not Linux's") {
        const auto doc = parse_image_document(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
            R"({"mediaType":"m","digest":")" +
            digest_of('f') +
            R"(","size":5,"platform":{"os":"windows","architecture":"amd64"}},)"
            R"({"mediaType":"m","digest":")" +
            digest_of('a') + R"(","size":5,"platform":{"os":"linux","architecture":"amd64"}}]})");
        REQUIRE(doc);
        REQUIRE(platform_entry(*doc, "amd64"));
        CHECK(platform_entry(*doc, "amd64")->digest == digest_of('a'));
    }
    SUBCASE("an OCI document without mediaType is known by its members") {
        const auto index = parse_image_document(R"({"schemaVersion":2,"manifests":[]})");
        REQUIRE(index);
        CHECK(index->kind == DocumentKind::index);
        const auto manifest = parse_image_document(R"({"schemaVersion":2,"config":{"digest":")" +
                                                   digest_of('c') + R"(","size":1},"layers":[]})");
        REQUIRE(manifest);
        CHECK(manifest->kind == DocumentKind::manifest);
    }
    SUBCASE("digests that would name other files, and broken documents, are refused") {
        for (const std::string& bad : std::vector<std::string>{
                 std::string("not json"), std::string("[]"),
                 std::string(R"({"mediaType":"application/vnd.oci.image.config.v1+json"})"),
                 std::string(R"({"schemaVersion":2,"layers":[]})"),
                 std::string(
                     R"({"config":{"digest":"sha256:../../etc/passwd","size":1},"layers":[]})"),
                 R"({"config":{"digest":"sha512:)" + std::string(128, 'a') +
                     R"(","size":1},"layers":[]})",
                 R"({"config":{"digest":")" + digest_of('c') + R"(","size":-1},"layers":[]})",
                 R"({"config":{"digest":")" + digest_of('c') +
                     R"(","size":1},"layers":[{"digest":"sha256:ABC","size":1}]})",
                 R"({"manifests":[{"digest":")" + digest_of('C') + R"(","size":1}]})"}) {
            CAPTURE(bad);
            CHECK_FALSE(parse_image_document(bad));
        }
    }
}

TEST_CASE("layout_blob_path") {
    CHECK(layout_blob_path(digest_of('a')) == "blobs/sha256/" + std::string(64, 'a'));
}

TEST_CASE("layout_index_json") {
    Descriptor root{std::string(media_type::oci_manifest), digest_of('a'), 42, {}, {}, {}};
    SUBCASE("a new layout names the root by its tag") {
        const auto json = layout_index_json(root, "latest");
        REQUIRE(json);
        const auto d = parsed(*json);
        CHECK(d["schemaVersion"].GetInt() == 2);
        CHECK(std::string(d["mediaType"].GetString()) == "application/vnd.oci.image.index.v1+json");
        REQUIRE(d["manifests"].Size() == 1);
        const auto& m = d["manifests"][0];
        CHECK(std::string(m["mediaType"].GetString()) == media_type::oci_manifest);
        CHECK(std::string(m["digest"].GetString()) == digest_of('a'));
        CHECK(m["size"].GetUint64() == 42);
        CHECK(std::string(m["annotations"][k_ref_name_annotation.data()].GetString()) == "latest");
    }
    SUBCASE("an existing layout keeps its other images and replaces the same name") {
        const auto first = layout_index_json(root, "v1");
        REQUIRE(first);
        Descriptor other = root;
        other.digest = digest_of('b');
        const auto second = layout_index_json(other, "v2", *first);
        REQUIRE(second);
        Descriptor replaced = root;
        replaced.digest = digest_of('c');
        const auto third = layout_index_json(replaced, "v1", *second);
        REQUIRE(third);
        const auto d = parsed(*third);
        REQUIRE(d["manifests"].Size() == 2);
        CHECK(std::string(d["manifests"][0]["digest"].GetString()) == digest_of('b'));
        CHECK(std::string(d["manifests"][1]["digest"].GetString()) == digest_of('c'));
        CHECK(std::string(
                  d["manifests"][1]["annotations"][k_ref_name_annotation.data()].GetString()) ==
              "v1");
    }
    SUBCASE("an index.json that is no index is an error") {
        CHECK_FALSE(layout_index_json(root, "latest", "{}"));
        CHECK_FALSE(layout_index_json(root, "latest", "garbage"));
        CHECK_FALSE(layout_index_json(root, "latest", R"({"manifests":[1]})"));
    }
    SUBCASE("an entry nested deeper than anything real is an error, not a crash") {
        const std::size_t depth = 1'000'000;
        const auto deep =
            R"({"manifests":[{"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}]}";
        const auto r = layout_index_json(root, "latest", deep);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("nested") != std::string::npos);
        // Real entries, annotations and all, are kept.
        const auto fine = R"({"manifests":[{"digest":")" + digest_of('b') +
                          R"(","annotations":{"a":"b"},"x":[[{"y":[1]}]]}]})";
        REQUIRE(layout_index_json(root, "latest", fine));
    }
}

TEST_CASE("oci_layout_json") {
    const auto d = parsed(oci_layout_json());
    CHECK(std::string(d["imageLayoutVersion"].GetString()) == "1.0.0");
}

TEST_CASE("docker_archive_manifest_json") {
    Descriptor config{"", digest_of('c'), 1, {}, {}, {}};
    std::vector<Descriptor> layers{{"", digest_of('a'), 1, {}, {}, {}},
                                   {"", digest_of('b'), 1, {}, {}, {}}};
    const auto d = parsed(docker_archive_manifest_json(config, layers, "shell/hello:v1"));
    REQUIRE(d.IsArray());
    REQUIRE(d.Size() == 1);
    CHECK(std::string(d[0]["Config"].GetString()) == "blobs/sha256/" + std::string(64, 'c'));
    REQUIRE(d[0]["RepoTags"].Size() == 1);
    CHECK(std::string(d[0]["RepoTags"][0].GetString()) == "shell/hello:v1");
    REQUIRE(d[0]["Layers"].Size() == 2);
    CHECK(std::string(d[0]["Layers"][0].GetString()) == "blobs/sha256/" + std::string(64, 'a'));
    CHECK(std::string(d[0]["Layers"][1].GetString()) == "blobs/sha256/" + std::string(64, 'b'));
}
TEST_SUITE_END();
